"""Datasets: the raw files, the dataset variants the models train on, the shared test subsets.

* :mod:`.sources`: fetching MNIST, Fashion-MNIST and CIFAR-10 with checksums, loading splits;
* :mod:`.variants`: clean, label-poisoned and input-scaled variants, saved with a manifest;
* :mod:`.subsets`: the seeded test subsets every evaluation shares, image by image.

Import from the modules (``from curvrobust.data.variants import load_variant``): this file
imports nothing, so a job's code inputs are the modules it uses, not the whole package.
"""

__all__ = ["sources", "subsets", "variants"]
