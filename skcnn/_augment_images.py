"""Augmentation and test-time augmentation of images: ``augment`` and ``tta``.

:class:`ImageAugmentation` is the ``batch_transform`` of the skorch net of
``CNNClassifier`` and ``CNNRegressor``: it changes the images of each
training batch (on their device) and never touches validation or
prediction batches. :func:`tta_views` gives the views that ``tta``
averages over at prediction time.
"""

import torch

__all__ = ["AUGMENT_PRESETS", "ImageAugmentation", "TTA_OPTIONS", "tta_views"]

# Smallest share of the image area a random resized crop keeps (torchvision's
# default, 0.08, is tuned for ImageNet's large photos; small data sets of small
# images lose too much of the object with it).
CROP_SCALE = (0.25, 1.0)

AUGMENT_PRESETS = {
    "flip": "random horizontal flip",
    "crop": f"random resized crop (area {CROP_SCALE[0]:.0%} to 100%, aspect 3/4 to 4/3)",
    "standard": "random resized crop, then horizontal flip",
    "trivialaugment": "random resized crop, horizontal flip, then TrivialAugmentWide",
}

TTA_OPTIONS = ("flip",)


def _preset(name, size):
    from torchvision.transforms import v2

    crop = v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True)
    flip = v2.RandomHorizontalFlip()
    if name == "flip":
        return flip
    if name == "crop":
        return crop
    if name == "standard":
        return v2.Compose([crop, flip])
    return v2.Compose([crop, flip, v2.TrivialAugmentWide()])


class ImageAugmentation:
    """Random transforms of the training images, drawn per image and batch.

    Every image of every training batch gets its own random draw (a
    torchvision transform applied to a whole batch would draw once for
    all), from torch's random generator: the estimators train inside a
    generator seeded by ``random_state``, so the same seed gives the same
    augmented batches and the same model.

    Parameters
    ----------
    transform : callable
        Takes one image ``(C, H, W)`` (float in [0, 1]) and returns an image
        of the same shape: a preset or the user's torchvision transform.
    label : str
        What ``augment`` was, for error messages.
    device : str, default=None
        Where to move each batch before transforming it (batches read by a
        ``DataLoader`` arrive on the CPU).
    """

    def __init__(self, transform, label, device=None):
        self.transform = transform
        self.label = label
        self.device = device

    @classmethod
    def from_param(cls, augment, size, device=None):
        """Build from the estimators' ``augment`` parameter (None: no-op).

        Parameters
        ----------
        augment : None, str or callable
            ``None``, a name of :data:`AUGMENT_PRESETS`, or a transform
            (a ``torchvision.transforms.v2`` transform, a ``Compose`` or any
            callable taking and returning one image tensor).
        size : (int, int)
            Height and width of the images (the crops' output size).
        device : str, default=None

        Returns
        -------
        augmentation : ImageAugmentation or None
        """
        if augment is None:
            return None
        if isinstance(augment, str):
            if augment not in AUGMENT_PRESETS:
                raise ValueError(
                    f"Unknown augment={augment!r}; the presets are "
                    f"{list(AUGMENT_PRESETS)}, or pass a torchvision.transforms.v2 "
                    "transform."
                )
            return cls(_preset(augment, list(size)), repr(augment), device)
        if not callable(augment):
            raise TypeError(
                f"augment must be None, one of {list(AUGMENT_PRESETS)} or a "
                f"torchvision.transforms.v2 transform (a callable); got "
                f"{type(augment).__name__} {augment!r}."
            )
        return cls(augment, type(augment).__name__, device)

    def __repr__(self):
        return f"ImageAugmentation({self.label})"

    @torch.no_grad()
    def __call__(self, Xb):
        """Augmented copy of a batch ``(n, C, H, W)``."""
        if self.device is not None:
            Xb = Xb.to(self.device)
        out = torch.empty_like(Xb, memory_format=torch.contiguous_format)
        for i in range(len(Xb)):
            try:
                xi = self.transform(Xb[i])
            except Exception as exc:
                raise ValueError(
                    f"augment={self.label} failed on an image of shape "
                    f"{tuple(Xb[i].shape)}: {type(exc).__name__}: {exc}"
                ) from exc
            if not torch.is_tensor(xi) or xi.shape != Xb[i].shape:
                got = tuple(xi.shape) if torch.is_tensor(xi) else type(xi).__name__
                raise ValueError(
                    f"augment={self.label} must return an image of the shape it "
                    f"was given, {tuple(Xb[i].shape)}; got {got}. Use transforms "
                    "that keep the size (RandomResizedCrop(size=(H, W)) rather "
                    "than RandomCrop of a smaller size)."
                )
            out[i] = xi
        return out


def tta_views(tta):
    """The views of each prediction batch that ``tta`` averages over.

    Parameters
    ----------
    tta : None or 'flip'

    Returns
    -------
    views : list of callable or None
        ``[None]`` (the images as they are) or ``[None, horizontal flip]``.
    """
    if tta is None:
        return [None]
    if tta == "flip":
        return [None, _hflip]
    raise ValueError(f"tta must be None or one of {list(TTA_OPTIONS)}; got {tta!r}.")


def _hflip(x):
    return torch.flip(x, dims=(-1,))
