"""Pure computation: numpy, scipy, pandas, anndata and torch. Never imports napari or Qt."""
