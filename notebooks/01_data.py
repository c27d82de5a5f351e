# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The data
#
# Make the synthetic COCO data set (or point at your own), look at sample images with their
# masks, and count the classes. In `local` mode the synthetic set lands in the local store,
# content-addressed by its settings, so notebook 02 trains on exactly these files.
#
# Executed by `make notebooks` (`python -m workflow notebooks`); the parameters below are the
# tiny CI-safe defaults, which `-p NAME VALUE` overrides.

# %% tags=["parameters"]
mode = "local"  # "local": everything on this machine; "aws": the configured AWS account
config_file = ""  # workflow.yaml; empty: $MLOPS_CONFIG, else ./workflow.yaml, else defaults
root = ""  # the local store; empty: local.root of the configuration
data = ""  # empty: the synthetic set; else a folder or s3:// prefix of a COCO data set
overrides = {}  # configuration keys (see workflow/config/models.py); {}: the demo's data set
samples = 4  # images drawn per split

# %%
from IPython.display import display

from workflow import notebook as nb
from workflow.notebook import viz

nb.setup_logging()
session = nb.start(mode, config_file=config_file, root=root, overrides=overrides)
print(f"mode={session.mode} store={session.root} config={session.config.source}")

# %% [markdown]
# ## Make or find the data set
# With `data = ""` the synthetic generator (`python -m mask_r_cnn.synthetic`) writes
# train/validation/test splits of coloured circles, squares and triangles, annotated with
# polygons and RLE masks. Point `data` at a folder (or `s3://` prefix) holding
# `train/`, `validation/` and `test/` COCO splits to use your own.

# %%
splits = nb.dataset_splits(session, data)
nb.split_summary(splits)

# %% [markdown]
# ## Sample images with their masks

# %%
for name, split in splits.items():
    display(viz.png(viz.sample_grid(split, count=samples, title=name)))

# %% [markdown]
# ## Class counts

# %%
for split in splits.values():
    display(nb.class_counts(split))

# %%
viz.png(viz.class_count_chart(splits))
