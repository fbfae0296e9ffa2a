"""Batch-level regularisation (engine/mixing.py): soft targets of mass 1, the same mix for the same seed,
one clip mixed (the model takes its pathways from it), and a resumed run with every regularisation key on equal to an
uninterrupted one."""


import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_recipe
from test_interrupts import _assert_same_weights, _records, _reset_accelerate, _signal_at

from accel_slowfast.engine.mixing import BatchMixing, Blending
from accel_slowfast.engine.training import train
from accel_slowfast.interrupts import InterruptedRun
from accel_slowfast.models.builders import build_model

NUM_CLASSES = 5
LABELS = torch.tensor([0, 1, 2, 3, 4, 0])
KINDS = {"mixup": dict(mixup_alpha=0.8), "cutmix": dict(cutmix_alpha=1.0),
         "both": dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1),
         "smoothing only": dict(label_smoothing=0.1), "never mixed": dict(mixup_alpha=0.8, mix_prob=0.0)}
# Everything this module adds, at PySlowFast's MViT settings
ALL_ON = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=1.0, mix_switch_prob=0.5, label_smoothing=0.1,
              rand_augment=True, rand_augment_magnitude=7, rand_augment_layers=4, random_erasing=0.25)


def _fast(seed=0):
    return torch.randn(len(LABELS), 3, 8, 16, 16, generator=torch.Generator().manual_seed(seed))  # (B, C, T, H, W)


@pytest.mark.parametrize("kind", KINDS)
def test_every_target_row_is_a_distribution(kind):
    for seed in range(10):
        _, targets = Blending(num_classes=NUM_CLASSES, **KINDS[kind])(_fast(), LABELS, seed)
        assert targets.dtype == torch.float32 and targets.shape == (len(LABELS), NUM_CLASSES)
        assert (targets >= 0).all() and torch.allclose(targets.sum(1), torch.ones(len(LABELS)))


def test_the_same_seed_gives_the_same_mix_and_another_seed_another():
    blending = Blending(num_classes=NUM_CLASSES, **KINDS["both"])
    first, again, other = (blending(_fast(), LABELS, seed) for seed in (7, 7, 8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_mixup_is_a_convex_mix_with_the_reversed_batch_and_its_labels():
    fast = _fast()
    mixed, targets = Blending(num_classes=NUM_CLASSES, mixup_alpha=0.8)(fast.clone(), LABELS, 3)
    lam = targets[1, LABELS[1]]  # clip 1 is mixed with clip 4 (the batch reversed): another class
    assert 0 < lam < 1 and torch.allclose(targets[1, LABELS[4]], 1 - lam)
    assert torch.allclose(mixed, lam * fast + (1 - lam) * fast.flip(0), atol=1e-6)


def test_cutmix_pastes_one_box_into_every_frame_and_weighs_the_labels_by_area():
    fast = _fast()
    for seed in range(10):
        mixed, targets = Blending(num_classes=NUM_CLASSES, cutmix_alpha=1.0)(fast.clone(), LABELS, seed)
        pasted = (mixed != fast).any(1)  # (B, T, H, W)
        assert all(torch.equal(pasted[:, t], pasted[:, 0]) for t in range(fast.shape[2]))
        assert torch.equal(mixed[pasted.unsqueeze(1).expand_as(mixed)],
                           fast.flip(0)[pasted.unsqueeze(1).expand_as(mixed)])
        area = pasted[1, 0].float().mean()
        assert torch.allclose(targets[1, LABELS[1]], 1 - area)


def test_smoothed_targets_are_cross_entropy_s_label_smoothing():
    logits = torch.randn(len(LABELS), NUM_CLASSES)
    _, targets = Blending(num_classes=NUM_CLASSES, label_smoothing=0.1)(_fast(), LABELS, 0)
    assert torch.allclose(F.cross_entropy(logits, targets), F.cross_entropy(logits, LABELS, label_smoothing=0.1))


def test_a_batch_of_one_clip_is_not_mixed():
    fast = _fast()[:1]
    mixed, targets = Blending(num_classes=NUM_CLASSES, cutmix_alpha=1.0)(fast.clone(), LABELS[:1], 0)
    assert torch.equal(mixed, fast) and torch.equal(targets, F.one_hot(LABELS[:1], NUM_CLASSES).float())


def _blended(iteration, process=0, **settings):
    model = build_model("slowfast_tiny", NUM_CLASSES)
    g = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (len(LABELS), 3, 8, 16, 16), dtype=torch.uint8, generator=g)
    batch = {"video": clips, "label": LABELS, "replaced": torch.zeros(len(LABELS))}
    mix = BatchMixing(Blending(num_classes=NUM_CLASSES, **settings), seed=0, normalize=model.normalize,
                      process_index=process)
    return mix(batch, iteration), model.normalize(clips)


def test_the_mixing_mixes_one_normalized_clip_and_keeps_the_hard_labels():
    batch, normalized = _blended(3, **KINDS["both"])
    clips = batch["video"]  # both pathways come from it in the model: the same lambda, the same box
    assert clips.dtype == torch.float32 and clips.shape == normalized.shape and not torch.equal(clips, normalized)
    assert torch.equal(batch["label"], LABELS) and "replaced" in batch
    assert torch.allclose(batch["target"].sum(1), torch.ones(len(LABELS)))


def test_the_mix_follows_the_iteration_and_the_process():
    mixes = {key: _blended(*key, **KINDS["both"])[0]["video"] for key in ((3, 0), (3, 0), (4, 0), (3, 1))}
    assert torch.equal(mixes[3, 0], _blended(3, 0, **KINDS["both"])[0]["video"])
    assert not torch.equal(mixes[3, 0], mixes[4, 0]) and not torch.equal(mixes[3, 0], mixes[3, 1])


def test_smoothing_alone_passes_the_clips_normalized():
    batch, normalized = _blended(0, label_smoothing=0.1)
    assert torch.equal(batch["video"], normalized)
    assert torch.allclose(batch["target"][0, 0], torch.tensor(0.9 + 0.1 / NUM_CLASSES))


def test_the_global_rng_is_left_as_it_was():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    Blending(num_classes=NUM_CLASSES, **KINDS["both"])(_fast(), LABELS, 1)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.slow
def test_a_run_with_every_regularisation_on_trains_and_resumes_mid_epoch_exactly(tiny_root, tmp_path, monkeypatch):
    recipe = dict(num_workers=0, max_epochs=2, checkpoint_interval=2, **ALL_ON)  # 5 iterations an epoch
    reference = train(tiny_recipe(tiny_root, tmp_path / "straight", **recipe))
    expected = {k: v.clone() for k, v in reference.model.state_dict().items()}
    losses = [r["loss"] for r in _records(tmp_path / "straight") if r["mode"] == "train"]
    assert len(losses) == 6 and all(0 < loss < 10 for loss in losses)  # log_interval 2 and each epoch's end
    _reset_accelerate()

    _signal_at(7, monkeypatch)  # epoch 2, iteration 2 of it
    with pytest.raises(InterruptedRun):
        train(tiny_recipe(tiny_root, tmp_path / "stopped", **recipe))
    _reset_accelerate()
    monkeypatch.undo()

    resumed = train(tiny_recipe(tiny_root, tmp_path / "stopped", resume_from="auto", **recipe))
    _assert_same_weights(resumed.model.state_dict(), expected)
    assert _records(tmp_path / "stopped") == _records(tmp_path / "straight")
