"""Training data: source/target face pairs sampled from a folder-per-identity dataset, and its LightningDataModule.

Sampling per ../shared/conformance/network/README.md §7.1. Fixed here: the reference marks a *random*
target as the same person when it comes from a *different* identity (so the reconstruction loss was applied to
nearly every pair); we set same_person = 1 only when the target shows the source's identity.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from utils.errors import DatasetError
from utils.image import read_image

logger = logging.getLogger(__name__)

IMAGE_SIZE = 256
# The original's file pattern is <root>/**/*.*g: every extension ending in "g" (jpg, jpeg, png).
DATASET_SUFFIX_END = "g"

Transform = Callable[[Image.Image], torch.Tensor]


def training_transform(image_size: int = IMAGE_SIZE) -> Transform:
    """Random colour jitter, resize to image_size², to a tensor in [-1, 1] (a new draw on every call).

    PIL RGB image → [3, image_size, image_size] float32 RGB in [-1, 1].
    """
    return transforms.Compose([
        transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.01),
        transforms.Resize((image_size, image_size), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])


def list_dataset_images(root: str | Path) -> list[Path]:
    """Image files under root, recursively, sorted (the original's ``**/*.*g`` pattern, case-insensitive)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist; pass --dataset_path with a preprocessed dataset")
    if not root.is_dir():
        raise DatasetError(f"dataset path {root} is not a folder; pass --dataset_path with a preprocessed dataset")
    files = sorted(
        path for path in root.rglob("*.*")
        if path.is_file() and len(path.suffix) > 1 and path.suffix.lower().endswith(DATASET_SUFFIX_END)
    )
    if not files:
        raise DatasetError(f"dataset folder {root} holds no .jpg/.jpeg/.png images (searched recursively)")
    return files


def group_by_identity(files: Sequence[Path]) -> list[list[int]]:
    """Indices of files grouped by parent folder (one folder = one identity), in file order."""
    groups: dict[Path, list[int]] = {}
    for index, path in enumerate(files):
        groups.setdefault(path.parent, []).append(index)
    return list(groups.values())


def check_dataset_options(laion_faces: bool, same_identity: bool, same_person: float) -> None:
    """Reject option combinations the dataset cannot honour (raised before any model is loaded)."""
    if same_identity and not laion_faces:
        raise DatasetError(
            "--same_identity needs the folder-per-identity (LAION) dataset layout; "
            "use --laion_faces, or --no-same_identity with --no-laion_faces"
        )
    if not 0.0 <= same_person <= 1.0:
        raise DatasetError(f"--same_person is a probability; got {same_person}")


class FaceSwapDataset(Dataset):
    """Source/target pairs from a folder-per-identity face dataset.

    Item: (source for the identity model [3, 256, 256], source as the real sample for D [3, 256, 256],
    target [3, 256, 256], same_person int64 0/1); images RGB in [-1, 1], the two sources separately jittered.
    With probability ``same_prob`` the target shows the source's identity (a random image of its folder
    with ``same_identity``, else the source image itself); otherwise it is a random image of the dataset.
    """

    def __init__(
        self,
        root: str | Path,
        same_prob: float = 0.2,
        same_identity: bool = True,
        laion_faces: bool = True,
        transform: Transform | None = None,
    ) -> None:
        check_dataset_options(laion_faces, same_identity, same_prob)
        self.files = list_dataset_images(root)
        self.laion_faces, self.same_identity, self.same_prob = laion_faces, same_identity, same_prob
        self.transform = transform or training_transform()
        self.identity_of = np.empty(len(self.files), dtype=np.int64)
        self.identities = group_by_identity(self.files) if laion_faces else [[i] for i in range(len(self.files))]
        for identity, members in enumerate(self.identities):
            self.identity_of[members] = identity

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> Image.Image:
        return Image.fromarray(np.ascontiguousarray(read_image(self.files[index])[:, :, ::-1]))

    def _random_index(self, upper: int) -> int:
        # torch's generator is re-seeded per DataLoader worker, so workers draw different pairs.
        return int(torch.randint(upper, ()).item())

    def sample_target(self, index: int) -> tuple[int, bool]:
        """Pick the target for source ``index``: (target index, whether it shows the source's identity)."""
        if float(torch.rand(())) > self.same_prob:
            target_index = self._random_index(len(self.files))
            return target_index, bool(self.identity_of[target_index] == self.identity_of[index])
        if self.same_identity:
            members = self.identities[self.identity_of[index]]
            return members[self._random_index(len(members))], True
        return index, True

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        source = self._load(index)
        target_index, same = self.sample_target(index)
        target = source if target_index == index else self._load(target_index)
        return (
            self.transform(source),
            self.transform(source),
            self.transform(target),
            torch.tensor(int(same), dtype=torch.int64),
        )


class FaceSwapDataModule(pl.LightningDataModule):
    """Shuffled batches of :class:`FaceSwapDataset` pairs (incomplete last batch dropped)."""

    def __init__(
        self,
        dataset_path: str | Path,
        batch_size: int = 16,
        same_prob: float = 0.2,
        same_identity: bool = True,
        laion_faces: bool = True,
        num_workers: int = 4,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.dataset_path = Path(dataset_path)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.same_prob, self.same_identity, self.laion_faces = same_prob, same_identity, laion_faces
        self.dataset: FaceSwapDataset | None = None

    def check(self) -> FaceSwapDataset:
        """Build (once) and validate the dataset; raises DatasetError with one clear message."""
        if self.dataset is None:
            self.dataset = FaceSwapDataset(
                self.dataset_path, self.same_prob, self.same_identity, self.laion_faces
            )
            if len(self.dataset) < self.batch_size:
                raise DatasetError(
                    f"dataset folder {self.dataset_path} holds {len(self.dataset)} images, fewer than one batch "
                    f"of {self.batch_size}; lower --batch_size or add images"
                )
            logger.info(
                "dataset %s: %d images, %d identities", self.dataset_path, len(self.dataset),
                len(self.dataset.identities),
            )
        return self.dataset

    def setup(self, stage: str | None = None) -> None:
        self.check()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.check(),
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            drop_last=True,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )
