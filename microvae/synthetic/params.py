"""Parameters of the synthetic mitochondria generator (validated, with physical units)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SynthParams", "PHENOTYPES"]

PHENOTYPES = ("tubular", "fragmented", "mixed")


class SynthParams(BaseModel):
    """What a synthetic image looks like; lengths in micrometres, intensities in photons.

    Defaults imitate a widefield/spinning-disk fluorescence image of mitochondria at 65 nm per
    pixel with a 1.4 NA objective: tubules 0.15-0.30 um across (at the diffraction limit of
    about 0.19 um FWHM), a 12-bit camera with an offset, Poisson shot noise and read noise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: tuple[int, ...] = Field((512, 512), description="YX or ZYX shape in pixels")
    phenotype: Literal["tubular", "fragmented", "mixed"] = "tubular"
    dtype: Literal["uint16", "uint8"] = "uint16"
    pixel_size_um: float = Field(0.065, gt=0.005, le=1.0)
    z_step_um: float = Field(0.2, gt=0.01, le=5.0)
    wavelength_um: float = Field(0.52, ge=0.3, le=1.0, description="emission wavelength")
    numerical_aperture: float = Field(1.4, gt=0.1, lt=1.515)
    tubule_diameter_um: tuple[float, float] = (0.15, 0.30)
    punctum_diameter_um: tuple[float, float] = (0.30, 0.55)
    punctum_length_um: tuple[float, float] = (0.0, 0.7)
    node_spacing_um: float = Field(1.5, gt=0.2, description="minimum distance of branch points")
    loop_probability: float = Field(0.12, ge=0, le=1, description="share of extra edges kept")
    break_probability: float = Field(0.12, ge=0, le=1, description="share of tree edges removed")
    n_cells: tuple[int, int] = (1, 3)
    peak_photons: float = Field(100.0, gt=0, description="photons at a tubule's core, unblurred")
    background_photons: float = Field(4.0, ge=0, description="cytosolic haze inside cells")
    read_noise_electrons: float = Field(1.6, ge=0)
    offset_fraction: float = Field(
        0.05, ge=0, lt=0.5, description="camera offset / full scale (4 read-noise sigmas)"
    )
    full_scale_use: float = Field(0.8, gt=0.05, le=1.0, description="unblurred peak / full scale")
    supersample: int = Field(2, ge=1, le=4, description="rendering oversampling in Y and X")

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) not in (2, 3) or any(n < 8 for n in v[-2:]) or any(n < 1 for n in v):
            raise ValueError(f"shape must be YX or ZYX with Y, X >= 8 pixels, got {v}")
        return v

    @field_validator("tubule_diameter_um", "punctum_diameter_um", "punctum_length_um", "n_cells")
    @classmethod
    def _range(cls, v: tuple, info) -> tuple:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(
                f"{info.field_name} must be (low, high) with 0 <= low <= high, got {v}"
            )
        return v

    @model_validator(mode="after")
    def _positive_sizes(self) -> SynthParams:
        if self.tubule_diameter_um[0] <= 0 or self.punctum_diameter_um[0] <= 0:
            raise ValueError("tubule_diameter_um and punctum_diameter_um must be > 0")
        if self.n_cells[0] < 1:
            raise ValueError(f"n_cells must be at least 1, got {self.n_cells}")
        return self

    @property
    def bit_depth(self) -> int:
        """12 for uint16 (a 12-bit camera), 8 for uint8."""
        return 12 if self.dtype == "uint16" else 8

    @property
    def is_stack(self) -> bool:
        return len(self.shape) == 3

    @property
    def axes(self) -> str:
        return "ZYX" if self.is_stack else "YX"
