"""The zoo: one file per model family; importing a file registers its models."""

from . import alexnet, cnn, diffusion, dqn, gan, gcn, gpt, mlp, mobilenet, mobilenet_v3, recurrent, resnet, transformer, word2vec  # noqa: F401
