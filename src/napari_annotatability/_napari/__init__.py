"""napari hooks: sample data and layer builders (AnnData -> layer data). No Qt imports."""
