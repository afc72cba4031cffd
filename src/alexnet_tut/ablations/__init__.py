"""Chapter 04's experiments: the paper's claims (§3, §4, §7) re-run at a size a CPU can train.

The modules, each with one job (chapter 04 calls the names below as
``ablations.<name>``):

- `ablations.data`: `load_small_images`, CIFAR-10 when it can be had (the
  paper's Figure 1 used it), else the book's offline stand-in, as 32×32
  NumPy arrays; `budget_for`, how much each profile trains;
- `ablations.network`: `build_small_alexnet`, an AlexNet-shaped network small
  enough for two CPU cores, whose activation, pooling, LRN, dropout, depth
  and colour augmentation are arguments;
- `ablations.runner`: `run_configs` trains several configurations of that
  network on the same data, in the same batch order, from the same initial
  weights, over several seeds, and returns every evaluation as one table
  (`Runs.history`);
- `ablations.readings`: `crossing_epochs`, `final_values`,
  `paired_differences`, `effect_sentence`, `lrn_activity` and
  `plot_histories` read the results.

One experiment changes one argument. Everything else, the data, the batch
order, the initial weights of every layer whose shape the change leaves alone,
and the optimizer, stays the same, so a difference between two curves of the
same seed comes from the change and from nothing else we control.
"""

from alexnet_tut.ablations.data import (  # noqa: F401
    BUDGETS, Budget, CIFAR10_CLASSES, CIFAR10_URL, IMAGE_SIZE, PAPER_THRESHOLD,
    SmallImages, budget_for, chance_error, load_small_images, race_threshold, small_image,
    standin_files)
from alexnet_tut.ablations.network import (  # noqa: F401
    ACTIVATIONS, FIGURE1_NETWORK, SMALL_DENSE, SMALL_FILTERS, SMALL_KERNELS,
    SMALL_LRN_AFTER, SMALL_POOL_AFTER, build_small_alexnet, layer_table)
from alexnet_tut.ablations.runner import (  # noqa: F401
    Runs, batch_order, evaluate, run_configs)
from alexnet_tut.ablations.readings import (  # noqa: F401
    METRIC_NAMES, crossing_epochs, effect_sentence, fastest, final_errors, final_values,
    lrn_activity, paired_differences, plot_histories, race_sentence, spread, verdict)
