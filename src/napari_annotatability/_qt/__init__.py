"""Dock widgets: thin Qt/magicgui skins over the API (import napari and Qt here only)."""
