"""Sphinx extension: the built book loads every script and image from its own folder, none from a CDN.

- The ipywidgets embed scripts (RequireJS and ``@jupyter-widgets/html-manager``) come from pinned npm
  tarballs, downloaded once into ``${XDG_CACHE_HOME:-~/.cache}/dlcourse-book/``, checked against npm's
  sha512 ``dist.integrity``, and copied into ``_static/vendor/``; myst-nb's ``nb_ipywidgets_js`` points there.
  ``offline_widgets.js``, loaded between the two, points html-manager at its fonts and lets it typeset
  with MathJax 3.
- MathJax is vendored by ``sphinx-mathjax-offline``; this extension refuses a ``mathjax_path`` on another host.
- Images on other hosts (the Colab badge of every lab) are shown as their alt text inside their link.
- Inline scripts that Sphinx would write twice on a page are written once.
"""

import base64
import hashlib
import os
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ConfigError, ExtensionError
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = "vendor"  # under the build's _static/
WIDGETS_SETUP = Path(__file__).with_name("offline_widgets.js")


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # npm's dist.integrity: "sha512-" + base64 of the tarball's SHA-512
    files: tuple[str, ...]  # glob patterns inside the tarball's package/ folder

    @property
    def tarball_name(self) -> str:
        return f"{self.name.split('/')[-1]}-{self.version}.tgz"

    @property
    def url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.tarball_name}"

    @property
    def vendor_subdir(self) -> str:
        return self.name.split("/")[-1]


REQUIREJS = NpmPackage(
    "requirejs",
    "2.3.8",
    "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
    ("require.js",),
)
# 1.0.x is the html-manager of ipywidgets 8. Its icon fonts are loaded next to embed-amd.js; browsers
# that read woff2/woff never ask for the eot/ttf/svg copies, which are left out.
HTML_MANAGER = NpmPackage(
    "@jupyter-widgets/html-manager",
    "1.0.15",
    "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    ("dist/embed-amd.js", "dist/*.woff2", "dist/*.woff"),
)
PACKAGES = (REQUIREJS, HTML_MANAGER)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlcourse-book"


def integrity_of(data: bytes) -> str:
    """npm's integrity string: ``"sha512-" + base64(SHA-512(data))``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(package: NpmPackage, target: Path) -> None:
    try:
        with urllib.request.urlopen(package.url, timeout=60) as response:
            data = response.read()
    except OSError as error:
        raise ExtensionError(
            f"offline_assets: could not download {package.url} ({error}). Fetch that file by hand into "
            f"{target} (it must match {package.integrity}), or build where registry.npmjs.org is reachable."
        ) from error
    if integrity_of(data) != package.integrity:
        raise ExtensionError(
            f"offline_assets: {package.url} does not match its pinned integrity {package.integrity} "
            f"(got {integrity_of(data)}); nothing was cached."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)


def verified_tarball(package: NpmPackage) -> Path:
    """The package's tarball in the cache, downloaded first if missing or not matching its integrity."""
    path = cache_dir() / "npm" / package.tarball_name
    if path.is_file() and integrity_of(path.read_bytes()) == package.integrity:
        return path
    if path.is_file():
        logger.info(f"offline_assets: {path} does not match its pinned integrity; downloading it again")
    logger.info(f"offline_assets: downloading {package.url}")
    download(package, path)
    return path


def copy_package_files(package: NpmPackage, tarball: Path, static_dir: Path) -> list[Path]:
    """Copy the tarball's files that match ``package.files`` (flattened) into ``_static/vendor/<package>/``."""
    target_dir = static_dir / VENDOR_DIR / package.vendor_subdir
    target_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            inside = str(PurePosixPath(member.name).relative_to("package"))
            if member.isfile() and any(fnmatch(inside, pattern) for pattern in package.files):
                target = target_dir / PurePosixPath(inside).name
                target.write_bytes(archive.extractfile(member).read())
                copied.append(target)
    missing = [p for p in package.files if not any(fnmatch(c.name, PurePosixPath(p).name) for c in copied)]
    if missing:
        raise ExtensionError(f"offline_assets: {tarball.name} has no file matching {missing}")
    return copied


def script_path(package: NpmPackage) -> str:
    """The package's main script relative to ``_static/``, as Sphinx's ``add_js_file`` expects it."""
    return f"{VENDOR_DIR}/{package.vendor_subdir}/{PurePosixPath(package.files[0]).name}"


def point_widgets_at_vendored_scripts(app: Sphinx, config) -> None:
    # No data-jupyter-widgets-cdn: the bundled base, controls and output widgets need no CDN.
    config.nb_ipywidgets_js = {script_path(REQUIREJS): {}, WIDGETS_SETUP.name: {}, script_path(HTML_MANAGER): {}}


def refuse_remote_mathjax(app: Sphinx, config) -> None:
    """A guard: sphinx-mathjax-offline sets the local ``mathjax_path`` in its setup(), which in Sphinx 7
    wins over conf.py; should an extension or a later Sphinx put a CDN back, the build stops."""
    if "://" in (config.mathjax_path or "") or str(config.mathjax_path).startswith("//"):
        raise ConfigError(
            f"offline_assets: mathjax_path is {config.mathjax_path!r}, on another host; the book serves MathJax "
            "from _static/ (sphinx-mathjax-offline), so remove that setting"
        )


def fetch_packages(app: Sphinx) -> None:
    """Download (or find in the cache) every tarball before the slow part of the build, to fail early."""
    if app.builder.format == "html":
        for package in PACKAGES:
            verified_tarball(package)


def copy_packages(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static_dir = Path(app.outdir) / "_static"
    for package in PACKAGES:
        copy_package_files(package, verified_tarball(package), static_dir)
    shutil.copyfile(WIDGETS_SETUP, static_dir / WIDGETS_SETUP.name)


def drop_repeated_inline_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Write every inline script once.

    Sphinx 7 writes an inline script that an extension adds after the builder started twice (once
    registered with the name None, once with ""); sphinx-thebe's ``const THEBE_JS_URL`` then fails
    with "Identifier has already been declared".
    """
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


class RemoteImagesAsAltText(SphinxPostTransform):
    """Show an image on another host as its alt text, so that no page asks another host for anything."""

    default_priority = 100
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for image in list(self.document.findall(nodes.image)):
            if "://" in image["uri"]:
                alt = image.get("alt") or image["uri"]
                image.replace_self(nodes.inline(alt, alt, classes=["remote-image-alt"]))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", point_widgets_at_vendored_scripts)
    app.connect("config-inited", refuse_remote_mathjax)
    app.connect("builder-inited", fetch_packages)
    app.connect("build-finished", copy_packages)
    app.connect("html-page-context", drop_repeated_inline_scripts, priority=900)  # after myst-nb adds its scripts
    app.add_post_transform(RemoteImagesAsAltText)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
