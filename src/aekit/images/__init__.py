"""Images: files, patches, tiled whole-image inference, metrics, damage, built-in photos, and
the applications (denoising, inpainting, compression).

Arrays are float32 (C, H, W) in [0, 1]; batches are (n, C, H, W).
"""

from ..models.unet import diffusion_fill
from .apps import (
    MaskInput,
    SelfEnsemble,
    compress_image,
    decompress_image,
    denoise,
    dihedral_inverse,
    estimate_noise,
    inpaint,
    opponent_noise_band,
    opponent_to_rgb,
    read_compressed,
    rgb_to_opponent,
    train_compressor,
    train_denoiser,
    train_image_model,
    train_inpainter,
)
from .builtin import (
    EXTRA_PHOTOS,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    VAL_PHOTOS,
    load_fashion_mnist,
    load_mnist_images,
    load_photo,
    load_photos,
)
from .damage import (
    DAMAGES,
    Blocks,
    Damage,
    GaussianNoise,
    NoiseLevelMap,
    PixelMask,
    SaltPepperNoise,
    TextOverlay,
    make_damage,
)
from .guided import GuidedRefine, guided_nl_means
from .io import as_chw, list_images, load_folder, read_image, write_image
from .metrics import psnr, ssim
from .patches import PatchSource, dihedral
from .tiling import predict_tiled, tile_positions, window

__all__ = [
    "DAMAGES",
    "EXTRA_PHOTOS",
    "TEST_PHOTOS",
    "TRAIN_PHOTOS",
    "VAL_PHOTOS",
    "Blocks",
    "Damage",
    "GaussianNoise",
    "GuidedRefine",
    "MaskInput",
    "NoiseLevelMap",
    "PatchSource",
    "PixelMask",
    "SaltPepperNoise",
    "SelfEnsemble",
    "TextOverlay",
    "as_chw",
    "compress_image",
    "decompress_image",
    "denoise",
    "diffusion_fill",
    "dihedral",
    "dihedral_inverse",
    "estimate_noise",
    "guided_nl_means",
    "inpaint",
    "list_images",
    "load_fashion_mnist",
    "load_folder",
    "load_mnist_images",
    "load_photo",
    "load_photos",
    "make_damage",
    "opponent_noise_band",
    "opponent_to_rgb",
    "predict_tiled",
    "psnr",
    "read_compressed",
    "read_image",
    "rgb_to_opponent",
    "ssim",
    "tile_positions",
    "train_compressor",
    "train_denoiser",
    "train_image_model",
    "train_inpainter",
    "window",
    "write_image",
]
