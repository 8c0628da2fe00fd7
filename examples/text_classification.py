"""Sentiment of short sentences: word embeddings, mean pooling and a dense layer.

The corpus is built by the script from templates with a fixed seed:
sentences about films that carry positive or negative words (and "not"
before a positive word, which makes it negative), padded with noise words;
5% of the labels are flipped, as a careless annotator would, so about 95%
is the best held-out accuracy to expect. Each sentence becomes a row of word ids; the model averages the embeddings
of its words (padding masked out) and a dense layer scores the two classes.

    python examples/text_classification.py
    python examples/text_classification.py --epochs 5 --plot text.png
"""
from __future__ import annotations

import numpy as np
from _common import Progress, minibatches, parser, plot_curves

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import nn, optim, random

POSITIVE = ["good", "great", "excellent", "wonderful", "delightful", "brilliant", "superb", "enjoyable", "charming", "moving", "fantastic", "lovely"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dull", "poor", "horrible", "mediocre", "tedious", "disappointing", "weak", "messy"]
NOUNS = ["movie", "film", "plot", "acting", "story", "soundtrack", "ending", "cast", "script", "direction"]
INTENSIFIERS = ["very", "really", "quite", "truly", "so", "rather"]
NOISE = ["honestly", "overall", "i", "think", "just", "still", "also", "somehow", "frankly", "basically"]
TEMPLATES = (
    "the {noun} was {int} {adj}",
    "i thought this {noun} was {adj}",
    "what a {adj} {noun}",
    "a {adj} {noun} with a {int} {adj2} {noun2}",
    "the {noun} is {adj} and the {noun2} is {adj2}",
)
NEGATED = "the {noun} was not {int} {adj}"
PAD = "<pad>"


def make_corpus(rng, n, label_noise=0.05):
    """``n`` (sentence, label) pairs, label 1 for positive; about half of each."""
    sentences, labels = [], []
    for _ in range(n):
        positive = rng.random() < 0.5
        if not positive and rng.random() < 0.25:
            template, words = NEGATED, POSITIVE
        else:
            template, words = TEMPLATES[rng.integers(len(TEMPLATES))], POSITIVE if positive else NEGATIVE
        text = template.format(noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), int=rng.choice(INTENSIFIERS),
                               adj=rng.choice(words), adj2=rng.choice(words)).split()
        for _ in range(rng.integers(0, 4)):
            text.insert(rng.integers(0, len(text) + 1), rng.choice(NOISE))
        sentences.append(text)
        labels.append(int(positive != (rng.random() < label_noise)))
    return sentences, np.array(labels, np.int32)


def encode(sentences, vocab, length):
    """Word ids, padded (id 0) or cut to ``length`` words."""
    ids = np.zeros((len(sentences), length), np.int32)
    for i, words in enumerate(sentences):
        row = [vocab[w] for w in words[:length]]
        ids[i, :len(row)] = row
    return ids


def build_model(vocab_size, dim):
    embed_init, embed = nn.Embedding(vocab_size, dim)
    dense_init, dense = nn.Dense(2)

    def init(key, length):
        k1, k2 = random.split(key)
        return {"embed": embed_init(k1, (-1, length))[1], "dense": dense_init(k2, (-1, dim))[1]}

    def apply(params, ids):
        mask = fnp.asarray(ids != 0, fnp.float32)[..., None]
        vectors = embed(params["embed"], ids)
        pooled = fnp.sum(vectors * mask, axis=1) / fnp.maximum(fnp.sum(mask, axis=1), 1.0)
        return dense(params["dense"], pooled)

    return init, apply


def main(argv=None):
    args = parser(__doc__, epochs=15, lr=(0.02, "Adam learning rate"), batch_size=(32, "minibatch size"),
                  dim=(16, "embedding size"), n=(2000, "sentences in the corpus")).parse_args(argv)
    rng = np.random.default_rng(args.seed)
    sentences, labels = make_corpus(rng, args.n)
    vocab = {w: i for i, w in enumerate([PAD] + sorted({w for s in sentences for w in s}))}
    length = max(len(s) for s in sentences)
    ids = encode(sentences, vocab, length)
    n_test = args.n // 5
    x_train, y_train, x_test, y_test = ids[n_test:], labels[n_test:], ids[:n_test], labels[:n_test]
    print(f"{len(x_train)} training and {len(x_test)} held-out sentences, {len(vocab)} words, "
          f"e.g. {' '.join(sentences[0])!r} -> {'positive' if labels[0] else 'negative'}")

    init, apply = build_model(len(vocab), args.dim)
    k_init, k_train = random.split(random.key(args.seed))
    params = init(k_init, length)
    opt = optim.adam(args.lr)
    state = opt.init(params)

    @fg.jit
    def step(params, state, x, y):
        loss, grads = fg.value_and_grad(lambda p: nn.softmax_cross_entropy(apply(p, x), y))(params)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    predict = fg.jit(lambda params, x: fnp.argmax(apply(params, x), axis=-1))
    progress = Progress(args.epochs)
    for epoch in range(1, args.epochs + 1):
        losses = []
        for idx in minibatches(random.fold_in(k_train, epoch), len(y_train), args.batch_size):
            params, state, loss = step(params, state, x_train[idx], y_train[idx])
            losses.append(float(loss))
        acc = float(np.mean(predict(params, x_test) == y_test))
        progress.epoch(epoch, len(y_train), loss=np.mean(losses), held_out_accuracy=acc)
    plot_curves(args.plot, progress.history)
    for text in ("a truly wonderful film", "the plot was not very good", "honestly the acting was dull"):
        words = [w for w in text.split() if w in vocab]
        label = int(predict(params, encode([words], vocab, length))[0])
        print(f"  {text!r}: {'positive' if label else 'negative'}")
    print(f"held-out accuracy: {acc:.2%} ({len(y_test)} sentences, {progress.elapsed():.1f} s)")
    return acc


if __name__ == "__main__":
    main()
