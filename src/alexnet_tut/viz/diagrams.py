"""Diagrams drawn from the model: where the two towers exchange data, and a ring all-reduce."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.viz.figure import TOWER_COLOURS, new_figure

#: The stages of the paper's network, top to bottom, as the diagram draws them.
STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def _stage_of_tensor(name: str) -> str:
    """The stage whose output a crossing tensor is: ``pool2_gpu1`` -> ``conv2``, ``fc6_gpu2`` -> ``fc6``."""
    base = re.sub(r"_gpu\d+$", "", name)
    match = re.fullmatch(r"(?:pool|lrn)(\d)", base)
    return f"conv{match.group(1)}" if match else base


def _stage_of_crossing(name: str) -> str:
    """The stage that reads a join: ``cross3`` -> ``conv3``, ``cross6`` -> ``fc6``."""
    match = re.fullmatch(r"cross(\d)", name)
    if not match:
        raise AlexnetTutError(f"{name!r} is not a tower crossing (cross3 ... cross8)")
    number = int(match.group(1))
    return f"conv{number}" if number <= 5 else f"fc{number}"


def plot_parallelism(crossings: Sequence[Mapping], parameters: int, *, replicas: int = 2,
                     title: str) -> Figure:
    """Model parallelism as the paper did it, next to data parallelism with a ring all-reduce.

    Left: the two towers, one column per GPU, one box per stage (conv1 ... fc8),
    and an arrow for every tensor that crosses between them, labelled with
    its values per image; the arrows are `alexnet_tut.towers.tower_crossings`'
    rows, so the picture is the model's graph, not a drawing of it. A stage
    whose input arrives on one tower only (the book's single fc8) is drawn on
    that tower. Right: ``replicas`` copies of the whole model in a ring, each
    sending $2(K-1)/K$ times the ``parameters`` gradients per step
    (`alexnet_tut.distribute.allreduce_values`).
    """
    if not crossings:
        raise AlexnetTutError("no crossings to draw: pass towers.tower_crossings(model)")
    if replicas < 2:
        raise AlexnetTutError(f"a ring needs at least 2 replicas, got {replicas}")
    towers = sorted({row["from"] for row in crossings} | {row["to"] for row in crossings})
    column = {tower: i for i, tower in enumerate(towers)}
    receivers: dict[str, set[str]] = {}
    for row in crossings:
        receivers.setdefault(_stage_of_crossing(row["crossing"]), set()).add(row["to"])
    # A stage read across towers lives on every tower unless only some towers receive its input
    # and the others send nothing into it (fc8: gpu2 sends, gpu1 receives and computes).
    senders_into = {}
    for row in crossings:
        senders_into.setdefault(_stage_of_crossing(row["crossing"]), set()).add(row["from"])
    lives_on = {stage: set(towers) for stage in STAGES}
    for stage, into in receivers.items():
        if senders_into[stage] - into:  # some tower only sends: the stage is not on it
            lives_on[stage] = into

    fig = new_figure(12.5, 5.6, title)
    ax_model, ax_data = fig.subplots(1, 2, width_ratios=(1.15, 1))
    y = {stage: len(STAGES) - 1 - i for i, stage in enumerate(STAGES)}
    box_w, box_h = 0.5, 0.5
    for tower, x in column.items():
        colour = TOWER_COLOURS[x % len(TOWER_COLOURS)]
        ax_model.text(x * 2, len(STAGES) - 0.35, tower.upper().replace("GPU", "GPU "),
                      ha="center", fontsize=11, fontweight="bold", color=colour)
        previous = None
        for stage in STAGES:
            if tower not in lives_on[stage]:
                continue
            cx, cy = x * 2, y[stage]
            ax_model.add_patch(FancyBboxPatch((cx - box_w / 2, cy - box_h / 2), box_w, box_h,
                                              boxstyle="round,pad=0.03", facecolor="white",
                                              edgecolor=colour, linewidth=1.5))
            ax_model.text(cx, cy, stage, ha="center", va="center", fontsize=9)
            if previous is not None:
                ax_model.add_patch(FancyArrowPatch((cx, y[previous] - box_h / 2 - 0.03),
                                                   (cx, cy + box_h / 2 + 0.03),
                                                   arrowstyle="-|>", mutation_scale=9,
                                                   color="grey", linewidth=1))
            previous = stage
    for row in crossings:
        source, target = _stage_of_tensor(row["tensor"]), _stage_of_crossing(row["crossing"])
        x0, x1 = column[row["from"]] * 2, column[row["to"]] * 2
        start = (x0 + (box_w / 2 if x1 > x0 else -box_w / 2), y[source] - 0.12)
        end = (x1 + (-box_w / 2 if x1 > x0 else box_w / 2), y[target] + 0.12)
        colour = TOWER_COLOURS[column[row["from"]] % len(TOWER_COLOURS)]
        ax_model.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11,
                                           color=colour, linewidth=1.4,
                                           connectionstyle="arc3,rad=0.0"))
        offset = 0.12 if x1 > x0 else -0.12
        ax_model.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + offset,
                      f"{row['values']:,}", ha="center", va="center", fontsize=7.5, color=colour,
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    ax_model.set_xlim(-0.8, 2 * (len(towers) - 1) + 0.8)
    ax_model.set_ylim(-0.7, len(STAGES) - 0.1)
    ax_model.set_title("model parallelism: each GPU holds half of every layer;\n"
                       "arrows: values per image sent across (forward)", fontsize=9.5)
    ax_model.set_axis_off()

    sent = 2 * (replicas - 1) / replicas * parameters
    angles = np.pi / 2 - 2 * np.pi * np.arange(replicas) / replicas
    radius = 1.0
    centres = [(radius * math.cos(a), radius * math.sin(a)) for a in angles]
    for k, (cx, cy) in enumerate(centres):
        ax_data.add_patch(FancyBboxPatch((cx - 0.33, cy - 0.2), 0.66, 0.4,
                                         boxstyle="round,pad=0.03", facecolor="white",
                                         edgecolor="tab:green", linewidth=1.5))
        ax_data.text(cx, cy, f"replica {k + 1}\nwhole model\n1/{replicas} of the batch",
                     ha="center", va="center", fontsize=8)
    for k in range(replicas):
        (ax0, ay0), (ax1, ay1) = centres[k], centres[(k + 1) % replicas]
        rad = 0.35 if replicas > 2 else 0.5
        ax_data.add_patch(FancyArrowPatch((ax0, ay0), (ax1, ay1), arrowstyle="-|>",
                                          mutation_scale=12, color="tab:green", linewidth=1.4,
                                          shrinkA=24, shrinkB=24,
                                          connectionstyle=f"arc3,rad={-rad}"))
    ax_data.text(0, 0, f"ring all-reduce:\neach replica sends\n2({replicas}−1)/{replicas} × "
                 f"{parameters / 1e6:,.1f} M\n= {sent / 1e6:,.1f} M gradients\nper step, any batch",
                 ha="center", va="center", fontsize=8.5)
    ax_data.set_xlim(-1.7, 1.7)
    ax_data.set_ylim(-1.6, 1.6)
    ax_data.set_aspect("equal")
    ax_data.set_title(f"data parallelism on {replicas} devices: every replica holds the whole\n"
                      "model and all-reduces its gradients after each step", fontsize=9.5)
    ax_data.set_axis_off()
    return fig
