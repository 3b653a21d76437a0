"""PretrainedFeatureExtractor.transform against a raw torchvision inference loop.

Both contenders embed the same 256 uint8 RGB images (96 x 96, stored as
``(n, H, W, 3)``) with the same ResNet-18 (``weights=None``: the extractor's
random initialisation, copied into a ``torchvision.models.resnet18()`` whose
``fc`` is replaced by ``Identity``) and the same preprocessing: scale to
[0, 1], resize the shorter side to 256 (bilinear, antialiased), centre-crop
224, normalise with the ImageNet mean and std; batches of 64, in eval mode
under ``torch.inference_mode()``. The parent checks that the embeddings
agree, then prints the ratio of the median times (skcnn / torch) and the
peak RSS.

Two raw loops: ``torch`` as one writes it, ``permute`` of the ``(n, H, W, 3)``
batch, which leaves the tensor in channels-last strides that the resize,
the crop and oneDNN's convolutions keep (about 30% faster on CPU than
channels-first; the extractor feeds named backbones channels-last batches
for that reason); ``torch_nchw`` the same loop on a contiguous
channels-first batch, for reference.

    python benchmarks/bench_extract.py [--reps 3] [--threads 1]
"""

import numpy as np
import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from torch import nn

from _harness import Case, main  # puts the checkout on sys.path
from skcnn.pretrained import PretrainedFeatureExtractor

N, SIZE, BATCH = 256, 96, 64
RESIZE, CROP = 256, 224
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def setup():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (N, SIZE, SIZE, 3), dtype=np.uint8)
    ext = PretrainedFeatureExtractor("resnet18", weights=None, batch_size=BATCH,
                                     device="cpu", random_state=0).fit(X[:2])
    cfg = ext.preprocessing_
    assert (cfg["resize"], cfg["input_size"], cfg["mean"], cfg["std"]) == (
        RESIZE, (CROP, CROP), MEAN, STD), cfg
    model = torchvision.models.resnet18()
    model.load_state_dict(ext.module_.state_dict())
    model.fc = nn.Identity()
    return {"X": X, "ext": ext, "model": model.eval(), "nbytes": X.nbytes}


def ours(d):
    return d["ext"].transform(d["X"])


def raw(d, contiguous=False):
    """The baseline: torchvision's functional transforms and the model."""
    model, X = d["model"], d["X"]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    out = np.empty((len(X), 512), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(X), BATCH):
            x = torch.from_numpy(X[start:start + BATCH]).permute(0, 3, 1, 2)
            x = x.float().div_(255)
            if contiguous:
                x = x.contiguous()
            x = TF.resize(x, [RESIZE], antialias=True)
            x = TF.center_crop(x, [CROP, CROP])
            out[start:start + BATCH] = model((x - mean) / std).numpy()
    return out


CASES = {
    "resnet18": Case(setup, {"skcnn": ours, "torch": raw,
                             "torch_nchw": lambda d: raw(d, contiguous=True)},
                     rtol=1e-4, atol=1e-5,
                     note=f"PretrainedFeatureExtractor('resnet18', weights=None)"
                          f".transform, {N} x {SIZE} x {SIZE} x 3 uint8 -> "
                          f"{CROP} x {CROP}, batches of {BATCH}"),
}

if __name__ == "__main__":
    main(CASES, "transform: PretrainedFeatureExtractor vs a raw torchvision loop")
