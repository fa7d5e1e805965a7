"""Whole sections of a million cells, interactive: an overview image when zoomed out.

Software OpenGL (and a laptop's GPU) draws a million points in seconds per frame; one
image of a few million pixels in milliseconds. For every cells or result layer with
more than ``max_points`` cells, :class:`LevelOfDetail` keeps an RGBA *overview* image
of the layer's colours (one pixel per cell or a little more, later cells on top, the
selection painted over), placed just below it. The camera decides what is drawn:

* more than ``max_points / 2`` cells in view: the overview image; the points are
  hidden (``layer.shown`` all false), so a frame costs an image;
* at most ``max_points / 2`` in view: the real points of the view and the widest margin
  around it that keeps them at most ``max_points`` (so that panning redraws them only
  when the view leaves the margin), so hover, clicks and napari's box selection work as
  always; the overview is hidden.

Layers with at most ``max_points`` cells are never touched: one code path, nothing
added for small sections. The points keep every cell, colour and feature; only what
is drawn changes. A box drawn in napari's select mode while the overview shows selects
the cells inside it (napari's own box selection sees only drawn points).
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Generator

import numpy as np
from napari.layers import Image, Layer, Points
from napari.viewer import Viewer
from qtpy.QtCore import QTimer

from napari_annotatability.core.raster import in_rectangle, paint, pixel_of, splat

logger = logging.getLogger(__name__)

#: Most points drawn at once: about 0.2 s per frame under software OpenGL (Mesa, 2 cores).
MAX_POINTS = 20_000
#: ``metadata["role"]`` of an overview image.
OVERVIEW_ROLE = "overview"
#: Colour painted over selected cells in the overview (napari's highlight blue).
HIGHLIGHT = np.array([0, 153, 255, 255], dtype=np.uint8)
#: Margins (fractions of the view) tried around the view when drawing points, widest first.
MARGINS = (1.0, 0.5, 0.25, 0.1)
#: Bins per side of the grid that counts cells in a view.
COUNT_BINS = 256

_controllers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def install_overview(viewer: Viewer, max_points: int = MAX_POINTS) -> LevelOfDetail:
    """The viewer's :class:`LevelOfDetail`, made on first use (idempotent)."""
    controller = _controllers.get(viewer)
    if controller is None:
        controller = LevelOfDetail(viewer, max_points)
        _controllers[viewer] = controller
    return controller


def _is_managed(layer: Layer) -> bool:
    """A 2D Points layer of cells (ours: it carries its AnnData)."""
    return (
        isinstance(layer, Points)
        and layer.ndim == 2
        and layer.metadata.get("adata") is not None
        and "sdata" not in layer.metadata
    )


def honour_shown(layer: Points) -> None:
    """Make napari draw only the ``shown`` points of a 2D layer.

    napari 0.9 filters a Points layer's slice by ``shown`` only when some dimension is
    not displayed: for 2D points in a 2D view every point is drawn whatever ``shown``
    says. This filters the layer's slice by ``shown`` (idempotent, so still right once
    napari does it itself).
    """
    state = layer._slicing_state
    if getattr(state, "_annotatability_shown", False):
        return
    original = state._update_slice_response

    def update(response) -> None:
        keep = layer.shown[response.indices]
        if not keep.all():
            size = np.asarray(response.size)
            response = dataclasses.replace(
                response,
                indices=response.indices[keep],
                size=size[keep] if size.ndim and len(size) == len(keep) else size,
            )
        original(response)

    state._update_slice_response = update
    state._annotatability_shown = True


class _CellCounter:
    """Counts cells in a rectangle in O(1): a summed-area table of a coarse grid.

    The count is of the cells in the grid bins the rectangle touches: at least the
    cells inside, never fewer.
    """

    def __init__(self, positions: np.ndarray) -> None:
        self.lo = positions.min(axis=0)
        span = np.maximum(positions.max(axis=0) - self.lo, 1e-12)
        self.step = span / COUNT_BINS
        bins = np.minimum(((positions - self.lo) / self.step).astype(np.int64), COUNT_BINS - 1)
        counts = np.zeros((COUNT_BINS, COUNT_BINS), dtype=np.int64)
        np.add.at(counts, (bins[:, 0], bins[:, 1]), 1)
        self.table = np.zeros((COUNT_BINS + 1, COUNT_BINS + 1), dtype=np.int64)
        self.table[1:, 1:] = counts.cumsum(axis=0).cumsum(axis=1)

    def count(self, lo: np.ndarray, hi: np.ndarray) -> int:
        first = np.clip(np.floor((lo - self.lo) / self.step).astype(np.int64), 0, COUNT_BINS)
        last = np.clip(np.floor((hi - self.lo) / self.step).astype(np.int64) + 1, 0, COUNT_BINS)
        t = self.table
        return int(
            t[last[0], last[1]]
            - t[first[0], last[1]]
            - t[last[0], first[1]]
            + t[first[0], first[1]]
        )


class _LayerOverview:
    """The overview image of one large layer and which of its cells are drawn."""

    def __init__(self, controller: LevelOfDetail, layer: Points) -> None:
        self.controller = controller
        self.layer = layer
        self.mode = "overview"
        self.window: tuple[np.ndarray, np.ndarray] | None = None
        self.stale = True
        self.image = Image(
            np.zeros((1, 1, 4), dtype=np.uint8),
            rgb=True,
            name=f"{layer.name} (overview)",
            metadata={"role": OVERVIEW_ROLE},
            opacity=layer.opacity,
            blending="translucent",
            visible=False,
        )
        self._positions()
        honour_shown(layer)
        layer.shown = False
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.render_if_shown)
        for emitter, slot in self._connections():
            emitter.connect(slot)
        layer.mouse_drag_callbacks.append(self._select_in_box)

    def _connections(self) -> list[tuple[object, object]]:
        """The layer's events this overview follows, with what each calls."""
        events = self.layer.events
        return [
            (events.face_color, self._changed),
            (events.data, self._data_changed),
            (events.visible, self._visibility),
            (events.opacity, self._opacity),
            (events.name, self._name),
            (events.mode, self._keep_box_selection_last),
            (self.layer.selected_data.events.items_changed, self._changed),
        ]

    # what is drawn ----------------------------------------------------------------
    def _positions(self) -> None:
        self.positions = np.asarray(self.layer.data, dtype=np.float64)[:, -2:]
        self.counter = _CellCounter(self.positions)

    def update(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Draw points or the overview for the view ``lo``-``hi`` (layer data coordinates)."""
        limit = self.controller.max_points
        if self.counter.count(lo, hi) > limit // 2:  # half: room for a margin
            if self.mode != "overview":
                self.mode, self.window = "overview", None
                self.layer.shown = False
            self._show_image()
            return
        if self.mode == "points" and self.window is not None:
            near, far = self.window
            if np.all(lo >= near) and np.all(hi <= far):
                return  # still inside the drawn window
        span = hi - lo
        window = (lo, hi)
        for margin in MARGINS:  # the widest margin within the limit: fewer redraws when panning
            wider = (lo - margin * span, hi + margin * span)
            if self.counter.count(*wider) <= limit:
                window = wider
                break
        self.mode, self.window = "points", window
        self.layer.shown = in_rectangle(self.positions, *window)
        self.image.visible = False

    def _show_image(self) -> None:
        if self.layer.visible and self.stale:
            self.render()
        self.image.visible = self.layer.visible

    def render(self) -> None:
        """Paint the overview image from the layer's colours and selection."""
        layer = self.layer
        size = np.asarray(layer.size)
        raster = splat(
            self.positions, layer.face_color, size=float(np.median(size)) if size.size else 0.0
        )
        image = raster.image
        chosen = np.fromiter(layer.selected_data, dtype=np.int64)
        if chosen.size:
            centres = pixel_of(self.positions[chosen], raster.origin, raster.pixel)
            paint(image, centres, np.broadcast_to(HIGHLIGHT, (chosen.size, 4)), stamp=3)
        scale = np.asarray(layer.scale)[-2:] * raster.pixel
        self.image.data = image
        self.image.scale = scale
        self.image.translate = (
            np.asarray(layer.translate)[-2:] + np.asarray(layer.scale)[-2:] * raster.origin
        )
        self.stale = False

    def render_if_shown(self) -> None:
        if self.mode == "overview" and self.layer.visible:
            self.render()

    # following the layer --------------------------------------------------------------
    def _changed(self, *_) -> None:
        self.stale = True
        self._timer.start()  # once, after the colours of one change have all been set

    def _data_changed(self, event) -> None:
        if getattr(event, "action", "changed") == "changing":
            return
        self._positions()
        if self.mode == "overview":
            self.layer.shown = False
        else:
            self.window = None
            self.controller.update_layer(self)
        self._changed()

    def _visibility(self, *_) -> None:
        if self.layer.visible:
            self.controller.update_layer(self)
        else:
            self.image.visible = False

    def _opacity(self, *_) -> None:
        self.image.opacity = self.layer.opacity

    def _name(self, *_) -> None:
        self.image.name = f"{self.layer.name} (overview)"

    def _keep_box_selection_last(self, *_) -> None:
        """napari appends its mode's callback on each change: ours must run after it."""
        callbacks = self.layer.mouse_drag_callbacks
        if self._select_in_box in callbacks:
            callbacks.remove(self._select_in_box)
        callbacks.append(self._select_in_box)

    def _select_in_box(self, layer: Points, event) -> Generator[None, None, None]:
        """While the overview shows, a box drawn in select mode selects the cells in it."""
        if layer.mode != "select" or self.mode != "overview":
            return
        start = np.asarray(layer.world_to_data(event.position))[-2:]
        shift = "Shift" in event.modifiers
        before = set(layer.selected_data)  # napari's box clears it when nothing is drawn
        yield
        end = start
        while event.type == "mouse_move":
            end = np.asarray(layer.world_to_data(event.position))[-2:]
            yield
        if np.array_equal(start, end):
            return
        rows = np.flatnonzero(
            in_rectangle(self.positions, np.minimum(start, end), np.maximum(start, end))
        )
        if shift:
            layer.selected_data = before.symmetric_difference(rows.tolist())
        else:
            layer.selected_data = set(rows.tolist())

    def close(self) -> None:
        """Stop following the layer."""
        for emitter, slot in self._connections():
            emitter.disconnect(slot)
        if self._select_in_box in self.layer.mouse_drag_callbacks:
            self.layer.mouse_drag_callbacks.remove(self._select_in_box)
        self._timer.stop()


class LevelOfDetail:
    """Overview images for the large cells layers of one viewer, following its camera.

    Parameters
    ----------
    viewer
        The viewer to follow.
    max_points
        Most cells drawn as points; layers with more get an overview image.
    """

    def __init__(self, viewer: Viewer, max_points: int = MAX_POINTS) -> None:
        self.viewer = viewer
        self.max_points = max_points
        self.overviews: dict[int, _LayerOverview] = {}
        viewer.layers.events.inserted.connect(self._inserted)
        viewer.layers.events.removed.connect(self._removed)
        viewer.layers.events.moved.connect(self._restack)
        camera = viewer.scene.camera
        camera.events.center.connect(self.update)
        camera.events.zoom.connect(self.update)
        viewer.canvas.events.size.connect(self.update)
        viewer.dims.events.ndisplay.connect(self.update)
        for layer in list(viewer.layers):
            self._add(layer)

    def overview_of(self, layer: Layer) -> Image | None:
        """The overview image of ``layer``, if it has one."""
        entry = self.overviews.get(id(layer))
        return None if entry is None else entry.image

    def is_overview(self, layer: Layer) -> bool:
        """Whether ``layer`` currently shows as its overview image (zoomed out)."""
        entry = self.overviews.get(id(layer))
        return entry is not None and entry.mode == "overview"

    def view_rectangle(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The canvas in world coordinates (the last two dimensions), or ``None`` in 3D."""
        if self.viewer.dims.ndisplay != 2:
            return None
        camera = self.viewer.scene.camera
        half = np.asarray(self.viewer.canvas.size, dtype=float) / (2 * camera.zoom)
        centre = np.asarray(camera.center, dtype=float)[-2:]
        return centre - half, centre + half

    def update(self, *_) -> None:
        """Choose, for every large layer, points or the overview for the current view."""
        for entry in list(self.overviews.values()):
            self.update_layer(entry)

    def update_layer(self, entry: _LayerOverview) -> None:
        if not entry.layer.visible:
            return
        view = self.view_rectangle()
        if view is None:
            lo, hi = entry.counter.lo, entry.counter.lo + entry.counter.step * COUNT_BINS
        else:
            corners = [np.asarray(entry.layer.world_to_data(corner))[-2:] for corner in view]
            lo, hi = np.minimum(*corners), np.maximum(*corners)
        entry.update(lo, hi)

    def _inserted(self, event) -> None:
        self._add(event.value)

    def _add(self, layer: Layer) -> None:
        if not _is_managed(layer) or len(layer.data) <= self.max_points:
            return
        if id(layer) in self.overviews:
            return
        entry = _LayerOverview(self, layer)
        self.overviews[id(layer)] = entry
        self.viewer.layers.insert(self.viewer.layers.index(layer), entry.image)
        self.update_layer(entry)
        logger.debug("%s: %d cells, overview image when zoomed out", layer.name, len(layer.data))

    def _removed(self, event) -> None:
        removed = event.value
        entry = self.overviews.pop(id(removed), None)
        if entry is not None:
            entry.close()
            if entry.image in self.viewer.layers:
                self.viewer.layers.remove(entry.image)
            return
        for key, entry in list(self.overviews.items()):
            if entry.image is removed:  # the person deleted the overview: draw all points
                del self.overviews[key]
                entry.close()
                entry.layer.shown = True

    def _restack(self, *_) -> None:
        """Keep each overview image just below its layer."""
        layers = self.viewer.layers
        with layers.events.moved.blocker(self._restack):
            for entry in self.overviews.values():
                if entry.image not in layers or entry.layer not in layers:
                    continue
                current, target = layers.index(entry.image), layers.index(entry.layer)
                if current != target - 1:
                    layers.move(current, target)
