"""The paper's training recipe (§5): every number of it, in one dataclass.

This module holds the choices; `alexnet_tut.solver` carries them out (the
optimizer, the learning-rate schedule, the loss), as Caffe's solver file
carries out its ``base_lr``, ``momentum`` and ``weight_decay``. It imports
nothing heavy, so that the command line can offer the recipes quickly.

Each choice, with the section it comes from:

* SGD with momentum 0.9 and batch 128 (§5).
* Weight decay 0.0005 on the weights (§5), in the paper's own update rule
  $v \\leftarrow 0.9 v - 0.0005 \\epsilon w - \\epsilon \\nabla L$,
  $w \\leftarrow w + v$: `PaperSGD` adds $0.0005 w$ to each kernel's gradient
  before the momentum step, so the decay runs through the momentum as in the
  paper (`alexnet_tut.solver.PaperSGD`). That is the gradient of a Keras
  ``L2(0.00025)`` penalty, but the
  logged loss stays the cross-entropy alone, as in Caffe's logs.
  ``SGD(weight_decay=...)`` would be decoupled (outside the momentum) and
  would also decay biases, which the paper does not do.
* The learning rate (§5): 0.01 for every layer at batch 128, divided by 10
  when the validation error stops improving, three times in all. The whole
  schedule, with the scaling to other batch sizes, is
  `alexnet_tut.solver.LearningRateSchedule`.
* Weights from N(0, 0.01) and biases 1 in conv2, conv4, conv5, fc6 and fc7
  (§5) as an option (``paper_init=True``); Keras's Glorot initialiser is the
  default, because it trains a fresh model more reliably.
* Dropout 0.5 on fc6 and fc7 (§4.2), in the model.
* Top-1 and top-5 accuracy (§6).

``recipe="modern"`` is a clearly labelled departure for short runs on small
datasets: a linear warm-up of the learning rate and label smoothing 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from alexnet_tut.errors import AlexnetTutError


@dataclass(frozen=True)
class Recipe:
    """The optimisation choices of a run; the defaults are the paper's (§5).

    Attributes:
        name: ``"paper"``, ``"modern"`` or a name of your own.
        learning_rate: starting learning rate at batch ``reference_batch_size``
            (§5: 0.01 for all layers at batch 128).
        reference_batch_size: the batch ``learning_rate`` is for.
        momentum: SGD momentum (§5: 0.9).
        weight_decay: the paper's weight decay (§5: 0.0005) on every kernel,
            applied by `alexnet_tut.solver.PaperSGD` in the paper's update rule.
        lr_factor: what the learning rate is multiplied by on a plateau (§5: 1/10).
        max_lr_reductions: how many times it may be reduced (§5: three).
        plateau_patience: epochs without a better validation top-1 before a
            reduction. The paper does not say: its authors divided by hand when
            the validation error "stopped improving". Three epochs, because a
            small validation set's top-1 jumps by several points from one epoch
            to the next; with two, the stand-in's run divided the rate after a
            lucky first epoch and stalled.
        dropout: dropout rate on fc6 and fc7 (§4.2: 0.5).
        paper_init: N(0, 0.01) weights and the paper's biases (§5).
        paper_bias: the bias of conv2, conv4, conv5, fc6 and fc7 under
            ``paper_init`` (§5: 1; Caffe's reference model: 0.1).
        warmup_epochs: linear learning-rate warm-up (not in the paper).
        label_smoothing: cross-entropy label smoothing (not in the paper).
    """

    name: str = "paper"
    learning_rate: float = 0.01
    reference_batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_factor: float = 0.1
    max_lr_reductions: int = 3
    plateau_patience: int = 3
    dropout: float = 0.5
    paper_init: bool = False
    paper_bias: float = 1.0
    warmup_epochs: int = 0
    label_smoothing: float = 0.0


RECIPES: dict[str, Recipe] = {
    # Krizhevsky et al. (2012), §5.
    "paper": Recipe(),
    # NOT the paper: a warm-up and label smoothing, which help a short run on
    # a small dataset such as Imagenette.
    "modern": Recipe(name="modern", warmup_epochs=2, label_smoothing=0.1),
}


def get_recipe(recipe: str | Recipe = "paper", **overrides: Any) -> Recipe:
    """The recipe called ``recipe`` (``"paper"`` or ``"modern"``), with ``overrides`` applied."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise AlexnetTutError(
                f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    try:
        return replace(recipe, **overrides)
    except TypeError as error:
        raise AlexnetTutError(f"bad recipe setting: {error}") from None


RECIPE_NAMES: tuple[str, ...] = tuple(RECIPES)
