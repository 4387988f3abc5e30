"""Showing the package's own code in a notebook, so that what a learner reads is what runs."""

from __future__ import annotations

import importlib
import inspect
import textwrap


class Source:
    """A function's or class's source, shown as highlighted Python in Jupyter and on GitHub."""

    def __init__(self, obj: object, lines: tuple[int, int] | None = None) -> None:
        text = textwrap.dedent(inspect.getsource(obj))
        if lines is not None:  # 1-based, inclusive: a part of a long function
            text = "\n".join(text.splitlines()[lines[0] - 1 : lines[1]]) + "\n"
        module = inspect.getmodule(obj)
        where = _imported_from(module, obj.__qualname__) if module else None
        self.where = f"{where}.{obj.__qualname__}" if where else obj.__qualname__
        self.text = text

    def _repr_markdown_(self) -> str:
        return f"`{self.where}`:\n\n```python\n{self.text}```\n"

    def __repr__(self) -> str:
        return f"# {self.where}\n{self.text}"


def _imported_from(module, qualname: str) -> str:
    """The shortest module path a learner imports the object from: the package that re-exports it
    (helpers.models for helpers.models.cnn_lstm.LSTMModel), else its own module."""
    top = qualname.split(".")[0]
    parts = module.__name__.split(".")
    for k in range(1, len(parts)):
        package = importlib.import_module(".".join(parts[:k]))
        if getattr(package, top, None) is getattr(module, top, None):
            return package.__name__
    return module.__name__


def show_source(obj: object, lines: tuple[int, int] | None = None) -> Source:
    """The source of `obj` (optionally only lines a..b of it), displayed as code in the notebook."""
    return Source(obj, lines)


def as_jpeg(fig, quality: int = 80):
    """A figure shown as a JPEG instead of a PNG: photo-like figures stay small in a stored notebook."""
    import io

    from IPython.display import Image
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", pil_kwargs={"quality": quality}, bbox_inches="tight")
    plt.close(fig)  # shown once, as the JPEG, not again as a PNG when the cell ends
    return Image(buffer.getvalue(), format="jpeg")


def as_gif(frames, fps: int = 4, scale: int = 2, colors: int = 64):
    """A clip's frames (T, H, W, 3) as an animated GIF shown in the notebook (looping)."""
    import io

    from IPython.display import Image as Shown
    from PIL import Image

    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale)) for f in frames]
    # One palette for the whole clip, taken from all its frames (a colour may appear late), and no
    # dithering: noisy backgrounds then compress several times smaller, and no frame flickers.
    strip = Image.new("RGB", (images[0].width * len(images), images[0].height))
    for k, image in enumerate(images):
        strip.paste(image, (k * images[0].width, 0))
    palette = strip.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="gif", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0
    )
    return Shown(buffer.getvalue(), format="gif")
