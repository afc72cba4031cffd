"""The recipe's numbers are the paper's (§4.2, §5), and a bad recipe is a one-line error."""

import pytest

from alexnet_tut.errors import AlexnetTutError
from alexnet_tut.recipe import RECIPE_NAMES, RECIPES, get_recipe


def test_the_paper_recipe_has_the_numbers_of_section_5():
    recipe = get_recipe("paper")
    assert (recipe.learning_rate, recipe.reference_batch_size, recipe.momentum,
            recipe.weight_decay) == (0.01, 128, 0.9, 0.0005)
    assert (recipe.lr_factor, recipe.max_lr_reductions) == (0.1, 3)  # "divided by 10 ... three times"
    assert recipe.dropout == 0.5  # §4.2
    assert (recipe.warmup_epochs, recipe.label_smoothing) == (0, 0.0)  # not in the paper


def test_modern_differs_from_the_paper_only_in_its_two_additions():
    paper, modern = RECIPES["paper"], RECIPES["modern"]
    differences = {k for k in vars(paper) if getattr(paper, k) != getattr(modern, k)}
    assert differences == {"name", "warmup_epochs", "label_smoothing"}
    assert RECIPE_NAMES == ("paper", "modern")


def test_overrides_apply_and_unknown_names_are_one_line_errors():
    assert get_recipe("paper", plateau_patience=5).plateau_patience == 5
    with pytest.raises(AlexnetTutError, match="unknown recipe 'adam'"):
        get_recipe("adam")
    with pytest.raises(AlexnetTutError, match="bad recipe setting"):
        get_recipe("paper", learning_rat=0.1)
