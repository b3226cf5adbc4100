"""Training: the corpus builder (``train.corpus``) and the datasets that feed models (``train.data``)."""
