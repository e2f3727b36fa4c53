"""Keras model files (.keras, .h5): the layer calls their config records, read without Keras.

A functional model's config records the arguments of every layer call; a
call made with `training=True` is replayed so by every `model(x)` and every
export traced without an explicit `training`, so the layer runs in training
mode in production. Reading and rewriting the config needs only the standard
library (.keras is a zip with config.json) and h5py (.h5 keeps it in the
`model_config` attribute); checking a fix loads the model with Keras.
"""
