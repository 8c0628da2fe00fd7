"""A convolutional network on scikit-learn's 8x8 handwritten digits.

The same data, split and training loop as mlp_digits.py (Adam, cosine
learning-rate decay, one jitted step, ``--distributed`` for MPI data
parallelism), with the images kept as 8x8x1 grids: two 3x3 convolutions,
2x2 max pooling, dropout and two dense layers.

    python examples/cnn_digits.py
    python examples/cnn_digits.py --epochs 5 --plot cnn.png
    OMP_NUM_THREADS=1 mpirun -n 2 python examples/cnn_digits.py --distributed
"""
from __future__ import annotations

from mlp_digits import arguments, train

from funcgrad import nn


def build_model(dropout):
    return nn.serial(nn.Conv(32, (3, 3), padding="SAME"), nn.Relu,
                     nn.Conv(64, (3, 3), padding="SAME"), nn.Relu,
                     nn.MaxPool((2, 2)), nn.Dropout(dropout), nn.Flatten,
                     nn.Dense(128), nn.Relu, nn.Dropout(dropout),
                     nn.Dense(10))


def main(argv=None):
    args = arguments(__doc__, epochs=15).parse_args(argv)
    return train(args, build_model(args.dropout), (-1, 8, 8, 1))


if __name__ == "__main__":
    main()
