"""Sphinx configuration: MyST pages, the example notebook executed at build time, numpydoc API reference.

Build (warnings are errors in CI):  sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import shutil
from pathlib import Path

import xr_ktextures

HERE = Path(__file__).parent
project = "xr_ktextures"
author = "xr_ktextures developers"
copyright = "2026, xr_ktextures developers"
release = version = xr_ktextures.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "make_figures.py", "**.ipynb_checkpoints"]
# The example notebook is stored without outputs (tests/test_docs.py checks it) and executed
# at every build, so the page shows what today's code prints; an error fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 900
nb_execution_in_temp = True  # the files it writes (sample_model.keras) stay out of the tree
myst_enable_extensions = ["colon_fence"]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = {"PR01", "RT01"}  # every parameter and return documented
autodoc_typehints = "none"
html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # long code lines wrap instead of being cut off
suppress_warnings = ["mystnb.unknown_mime_type"]

# The example notebook lives in examples/; copy it in so it is executed and rendered.
(HERE / "generated").mkdir(exist_ok=True)
shutil.copy(HERE.parent / "examples" / "quickstart.ipynb", HERE / "generated" / "quickstart.ipynb")
