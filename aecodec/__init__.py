"""aecodec: learned image compression with CompressAI entropy models, a Numba range coder and a checked container.

    from aecodec import compress_image, decompress_image
    data = compress_image(PIL.Image.open("photo.png"), quality=4)
    image = decompress_image(data)
"""

__version__ = "0.2.0"


def __getattr__(name):
    # Lazy: `import aecodec` stays light (no torch) for the container and coder layers.
    if name in ("compress_image", "decompress_image", "read_info"):
        from aecodec import image

        return getattr(image, name)
    if name in ("score_image", "score_audio", "image_features", "audio_features", "image_latents"):
        from aecodec import analysis  # anomaly scores, heatmaps and latent features

        return getattr(analysis, name)
    raise AttributeError(name)
