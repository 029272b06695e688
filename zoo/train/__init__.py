"""Training: the resumable phase runner, fine-tuning and schedules.

The resumable phase runner and transfer-learning engine
(:mod:`~zoo.train.engine`), ``zoo finetune`` as a library call
(:mod:`~zoo.train.finetune`) and learning-rate schedules (:mod:`~zoo.train.schedules`).

Importing this package imports nothing else.
"""
