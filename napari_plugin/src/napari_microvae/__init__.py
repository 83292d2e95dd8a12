"""napari-microvae: microvae reconstructions side by side with the originals in napari.

Widgets (Plugins menu > microvae): *Train* (image layers or a folder, a config with its key
fields, Train/Stop/Resume in a process of its own, live plots, collapse verdict, preview),
*Reconstruct* (a model on an image layer, in a worker
thread, the reconstruction beside the original in grid mode with linked contrast, metrics of
the whole image and of the view) and *Latent space* (prototype, samples, interpolation). Sample
data (File > Open Sample > microvae): synthetic mitochondria, 2D and a ZYX stack. The plugin
uses microvae's public API only.
"""

__version__ = "0.1.0"
