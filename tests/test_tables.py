"""The results page's generated tables and the verdict rule (`benchmarks/tables.py`)."""

import json
import re
import shutil

import numpy as np
import pytest

from benchmarks import quotes, tables, verdicts


def test_the_results_pages_tables_match_their_json(capsys):
    assert tables.main(["--check"]) == 0, capsys.readouterr().out


def test_a_number_edited_by_hand_in_a_generated_table_is_caught():
    text = tables.PAGES[0].read_text()
    start = text.index("<!-- table: finals fig3_comparison_mnist -->")
    number = re.search(r"\d\.\d{4}", text[start:]).group()  # INNA's training loss
    edited = text[:start] + text[start:].replace(number, f"{float(number) + 0.001:.4f}", 1)
    assert edited != text
    _, changed = tables.regenerate(edited)
    assert changed == ["finals fig3_comparison_mnist"]


def test_a_rerun_whose_json_differs_makes_its_tables_stale(tmp_path, monkeypatch):
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    data = json.loads((tmp_path / "fig3_comparison_mnist.json").read_text())
    data["rows"][0]["train_loss_per_seed"][0][-1] = 0.1  # INNA's seed 0, last epoch
    (tmp_path / "fig3_comparison_mnist.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    _, changed = tables.regenerate(tables.PAGES[0].read_text())
    assert set(changed) == {"verdicts inna", "finals fig3_comparison_mnist"}


def test_the_prose_quotes_its_json(capsys):
    assert quotes.misquoted(tables.PAGES[0].read_text()) == []
    assert len(quotes.QUOTED) >= 15


def test_a_quoted_number_edited_in_the_prose_is_caught():
    text = tables.PAGES[0].read_text()
    edited = text.replace(
        "(1.796 against 1.835 at step 3,000;", "(1.796 against 1.834 at step 3,000;"
    )
    assert edited != text
    assert quotes.misquoted(edited) == [
        "gpt_shakespeare_nanogpt-cpu_10000: '(1.796 against 1.835 at step 3,000;'"
    ]


def test_a_rerun_that_changes_a_quoted_number_is_caught(tmp_path, monkeypatch):
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    data = json.loads((tmp_path / "nanogpt_gpu.json").read_text())
    data["valid_loss_per_seed"][0][-1] = 1.8  # seed 0's last evaluation
    (tmp_path / "nanogpt_gpu.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    (missing,) = quotes.misquoted(tables.PAGES[0].read_text())
    assert missing == "nanogpt_gpu: 'at step 5,000 the validation loss is 1.7345 [1.8000, 1.6986]'"


def test_a_rerun_that_changes_a_verdict_makes_its_sentence_misquoted(tmp_path, monkeypatch):
    """A section's verdict sentence is the rule's output: a rerun in which INNAprop
    (2, 2) ends 0.1 higher (every seed above AdamW's) turns protocol (a)'s
    "Reproduced ... outperforms" into "Partly reproduced ... trails"; and a sentence
    several runs share is needed once per run."""
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    stem = "gpt_shakespeare_nanogpt-cpu_same-lr"
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    (inna22,) = [r for r in data["rows"] if r["name"] == "INNAprop (2, 2)"]
    for seed in inna22["valid_loss_per_seed"]:
        seed[-1] += 0.1
    (tmp_path / f"{stem}.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    missing = quotes.misquoted(tables.PAGES[0].read_text())
    said = "Partly reproduced at this budget: INNAprop (2, 2) trails AdamW, (0.1, 0.9) matches it"
    assert f"{stem}: {said!r}" in missing, missing

    monkeypatch.undo()
    text = tables.PAGES[0].read_text()
    assert text.count("**The sensitivity claim holds partly") == 2  # Figure 2, twice
    once = text.replace("**The sensitivity claim holds partly.**", "**Partly reproduced.**")
    assert quotes.misquoted(once) == ["fig2_sensitivity_cifar10: 'sensitivity claim holds partly'"]


def test_unchecked_lists_the_prose_numbers_no_quote_covers():
    """The reproducing page's run times are quoted from the JSON (not listed), its
    settings are not (listed, with the words around them)."""
    page = tables.ROOT / "docs" / "reproducing.md"
    listed = quotes.unchecked(page)
    assert not [line for line in listed if "minutes per figure" in line], listed
    assert any(line.startswith("0.5: ") and "dropout 0.5" in line for line in listed), listed


def test_the_gpt_verdicts_read_off_steps_follow_their_json(tmp_path, monkeypatch):
    """Where the prose reads a step off the curves (where an arm passes another, the
    evaluations it leads at, where the seeds' ranges are apart), the step is computed
    from the JSON: a rerun in which AdamW's seeds drop at step 1,500 of the 2,000-step
    run moves where INNAprop (2, 2) reaches AdamW's final level, and the quote fails."""
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    stem = "gpt_shakespeare_nanogpt-cpu_same-lr"
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    (inna22,) = [r for r in data["rows"] if r["name"] == "INNAprop (2, 2)"]
    at = data["eval_step"].index(1500)
    for seed in inna22["valid_loss_per_seed"]:
        seed[at] += 0.1  # at 1,500 no longer at AdamW's final level; at 1,750 it is
    (tmp_path / f"{stem}.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    missing = quotes.misquoted(tables.PAGES[0].read_text())
    assert f'{stem}: "it reaches AdamW\'s final level at step 1,750"' in missing, missing


@pytest.mark.parametrize(
    "a, b, metric, expected",
    [
        ([1.0, 1.1], [1.2, 1.3], "train", "ahead"),  # worst 1.1 below best 1.2
        ([1.0, 1.25], [1.2, 1.3], "train", "level"),
        ([1.4, 1.5], [1.2, 1.3], "train", "behind"),
        ([40.0, 41.0], [38.0, 39.0], "test", "ahead"),  # accuracies: higher is better
        ([38.0, 40.0], [39.0, 41.0], "test", "level"),
    ],
)
def test_the_rule_compares_the_seeds_ranges(a, b, metric, expected):
    assert verdicts.relation(np.array(a), np.array(b), metric) == expected


def test_a_claim_holds_partly_or_not_by_its_comparisons():
    def row(*finals):
        return {"train_loss_per_seed": [[9.0, f] for f in finals]}

    rows = {"A": row(1.0, 1.1), "B": row(1.2, 1.3), "C": row(1.05, 1.25), "D": row(2.0, 2.1)}
    ahead = verdicts.Comparison
    assert verdicts.judge(ahead("A", "ahead", "B", "train"), rows) == "holds"
    assert verdicts.judge(ahead("C", "ahead", "B", "train"), rows) == "mean"  # 1.15 < 1.25
    assert verdicts.judge(ahead("D", "ahead", "B", "train"), rows) == "fails"
    assert verdicts.judge(ahead("C", "not behind", "B", "train"), rows) == "holds"
    assert verdicts.judge(ahead("D", "not behind", "B", "train"), rows) == "fails"
    assert verdicts.judge(ahead("C", "level", "A", "train"), rows) == "holds"
    assert verdicts.verdict(["holds", "holds"]) == "holds"
    assert verdicts.verdict(["holds", "fails"]) == "partly"
    assert verdicts.verdict(["mean", "fails"]) == "partly"
    assert verdicts.verdict(["fails", "fails"]) == "not reproduced"
    assert verdicts.chain(["B", "A", "C"], rows, "train") == "A 1.050 ≈ C 1.150 ≈ B 1.250"
    assert verdicts.chain(["D", "A"], rows, "train") == "A 1.050 < D 2.050"


def test_the_performance_pages_gpt_peer_table_and_quote_follow_their_json(tmp_path, monkeypatch):
    page = tables.PAGES[1]
    assert page.name == "performance.md" and quotes.misquoted(page) == []
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    data = json.loads((tmp_path / "gpt_peer_speed.json").read_text())
    default = next(row for row in data["rows"] if row["shape"] == "default")
    default["steps_per_second"]["torch"] = 0.1  # a rerun where PyTorch is slower
    (tmp_path / "gpt_peer_speed.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    new, changed = tables.regenerate(page.read_text())
    assert changed == ["peer gpt_peer_speed"]
    assert "| 0.0735 | 0.0793 | 0.1 | 0.73x | 0.79x |" in new
    assert quotes.misquoted(page) == [
        "gpt_peer_speed: \"at nanoGPT's default shape (10.7M parameters, 16,384 tokens a step) "
        'it runs at 0.73x"'
    ]


def test_the_optimizer_step_table_is_its_json(tmp_path, monkeypatch):
    """The performance page's step table and the ratios its prose quotes come from
    step_speed.json; a rerun with another INNA time makes both stale."""
    page = tables.PAGES[1]
    text = page.read_text()
    assert "<!-- table: step step_speed -->" in text and quotes.misquoted(page) == []
    data = json.loads((tables.RESULTS / "step_speed.json").read_text())
    row = next(r for r in data["rows"] if r["tree"] == "dense_32M" and r["optimizer"] == "inna")
    assert f"| **{row['ratio_to_sgd_momentum']:.2f}x** |" in text
    row["ratio_to_sgd_momentum"] = 1.5
    for path in tables.RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    (tmp_path / "step_speed.json").write_text(json.dumps(data))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    _, changed = tables.regenerate(text)
    assert changed == ["step step_speed"]
    assert 'step_speed: "it took 1.50x momentum\'s time"' in quotes.misquoted(page)


def test_ratios_read_off_the_curves_are_checked_against_them():
    """The prose's epoch-by-epoch ratios (INNA's training loss over SGD's, the seeds'
    means) come from the JSON's curves; one edited by hand is caught. (It caught
    4.04x written for 1.3502 / 0.3338 = 4.045.)"""
    text = " ".join(tables.PAGES[0].read_text().split())  # as misquoted reads it
    stem = "fig3_comparison_mnist_long"
    ratio = quotes._ratio(tables.load(stem), "INNA", "SGD", 2)  # after 2 epochs
    said = f"INNA's loss is {ratio} SGD's after 2 epochs"
    assert said in text
    edited = text.replace(said, said.replace(ratio, f"{float(ratio[:-1]) - 0.05:.2f}x"))
    (missing,) = quotes.misquoted(edited)
    assert missing.startswith(f"{stem}: {said!r}"[:-1])


def test_the_hand_laid_curve_tables_are_checked_cell_by_cell():
    """Per-epoch losses, first steps reaching each loss level and accuracies of the
    tables laid out by hand (Figure 3 medium and long, Figure 4 long) are computed from
    the curves, and the long Figure 3's searches from its JSON: a cell edited by hand
    is caught."""
    text = tables.PAGES[0].read_text()
    stem = "fig3_comparison_mnist_long"
    quote = next(q for s, q in quotes._curve_cells() if s == stem)  # INNA's row
    row = quote(tables.load(stem))
    assert row.count(" | ") == 3 and row in text and quotes.misquoted(text) == []
    last = re.search(r"(\d)( \|)$", row)  # the last first-reach step's last digit
    edited = row[: last.start()] + str((int(last.group(1)) + 1) % 10) + last.group(2)
    (missing,) = quotes.misquoted(text.replace(row, edited))
    assert missing == f"{stem}: {row!r}"


def test_the_nin_peer_and_convolution_tables_are_computed_from_their_json(tmp_path, monkeypatch):
    """Rates and ratios of `nin_peer` (to PyTorch's INNA) and times and ratios of
    `conv` (to the native row of the same input and width), from a JSON made here."""
    peer = {
        "date": "2026-12-04 10:00",
        "commit": "0123456789abcdef",
        "machine": "x86_64, 2 cores",
        "contenders": ["jax-native", "jax-auto", "torch-inna"],
        "rounds": 5,
        "block": 20,
        "rows": [
            {
                "shape": "28x28x1",
                "width": 0.5,
                "steps_per_second": {"jax-native": 8.0, "jax-auto": 12.0, "torch-inna": 10.0},
            }
        ],
    }
    conv = {
        "date": "2026-12-04 11:00",
        "commit": "fedcba9876543210+changes",
        "machine": "x86_64, 2 cores",
        "device": "one cpu device",
        "batch_size": 32,
        "rounds": 3,
        "block": 5,
        "rows": [
            {
                "shape": "32x32x3",
                "width": 1.0,
                "variant": v,
                "forward_ms": f,
                "forward+backward_ms": b,
            }
            for v, f, b in (("native", 100.0, 400.0), ("matmul", 90.0, 200.0))
        ],
    }
    (tmp_path / "peer.json").write_text(json.dumps(peer))
    (tmp_path / "conv.json").write_text(json.dumps(conv))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    lines = tables.render("nin_peer", "peer")
    assert lines[0] == "| input | NiN width | ours, native | ours (default) | PyTorch, INNA |"
    assert lines[2] == "| 28x28x1 | 0.5 | 8.0 (0.80x) | 12.0 (1.20x) | 10.0 |"
    assert "5 interleaved blocks of 20 steps" in lines[-1] and "`0123456`" in lines[-1]
    lines = tables.render("conv", "conv")
    assert lines[2:4] == [
        "| 32x32x3 | 1 | native | 100.0 | 400.0 |",
        "| 32x32x3 | 1 | matmul (the CPU default) | 90.0 (0.90x) | 200.0 (0.50x) |",
    ]
    assert "`fedcba9+changes`" in lines[-1]


def test_the_gpt_profile_and_devices_tables_are_computed_from_their_json(tmp_path, monkeypatch):
    """`profile`: each part's milliseconds and share of the step, each piece's cost as
    what the passes lose without it, the rest as the step less its parts; `devices`:
    a row per JSON of the prefix, sorted by input and width, with the ratio of
    several devices to one."""
    made = {"date": "2026-12-05 03:00", "commit": "0123456789abcdef", "machine": "x86_64, 2 cores"}
    ms = {
        "step (the command's)": 50.0,
        "forward": 10.0,
        "forward+backward": 40.0,
        "forward+backward, no attention": 32.0,
        "forward+backward, no layer norm": 36.0,
        "forward+backward, no GELU": 30.0,
        "optimizer": 2.5,
    }
    shape = dict(layers=4, heads=4, embed_dim=128, context=64, batch_size=12)
    gpt = {**made, "shape": shape, "optimizer": "adamw", "rounds": 5, "block": 20}
    (tmp_path / "prof.json").write_text(json.dumps({**gpt, "backend": "cpu", "ms": ms}))
    for width, shape_, one, two in ((1.0, "28,28,1", 2.0, 3.0), (0.5, "28,28,1", 4.0, 5.0)):
        args = dict(width=width, shape=shape_, cpu_devices=2, optimizers="inna", chunks=6)
        args |= dict(chunk_steps=15, batch_size=32)
        rows = [
            {"optimizer": "inna@1cpu", "steps_per_second": one},
            {"optimizer": "inna@2cpu", "steps_per_second": two},
        ]
        name = f"dev_{shape_.replace(',', 'x')}_w{width:g}.json"
        (tmp_path / name).write_text(json.dumps({**made, "args": args, "rows": rows}))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    lines = tables.render("profile", "prof")
    assert lines[2] == "| the step (`Trainer.run`, the batch gathered on the host) | 50 | 100% |"
    assert lines[5] == "| the optimizer's update (AdamW, clipping, decay) | 2.5 | 5% |"
    assert lines[6:10] == [
        "| GELU (what making it the identity saves) | 10 | 20% |",
        "| attention's scores, softmax and weighted sum | 8 | 16% |",
        "| layer norm | 4 | 8% |",
        "| the rest: the step less forward, backward and update | 7.5 | 15% |",
    ]
    assert "4 layers of 128, context 64, batch 12" in lines[-1] and "`0123456`" in lines[-1]
    assert "5 interleaved rounds of 20 calls on one CPU device" in lines[-1]
    lines = tables.render("devices", "dev")
    assert lines[2:4] == [
        "| 0.5, 28x28x1 | 4.0 | 5.0 | 1.25x |",
        "| 1, 28x28x1 | 2.0 | 3.0 | 1.50x |",
    ]
    assert "6 interleaved chunks of 15 steps" in lines[-1]
    assert lines[-1].endswith("Two devices ran the step 1.25x to 1.50x as fast as one.")


def test_no_generated_table_is_wider_than_a_page_shows():
    """At 1400 px the site shows about eight columns of numbers before it hides the
    rest behind a horizontal scroll (the NiN's peer table had twelve): every generated
    table keeps to eight."""
    for page in tables.PAGES:
        for match in tables.BLOCK.finditer(page.read_text()):
            header = match[4].splitlines()[0]
            assert header.count("|") - 1 <= 8, (page.name, match[2], match[3], header)


def test_every_result_json_says_when_where_how_and_from_which_code():
    """Date, machine, the command (or the arguments it was given; step_speed's JSON of
    2026-12-04 only its preset, its one flag then) and the commit; a JSON that records
    no commit is one of `tables.COMMITTED_IN`, whose tables say so, with the commit that
    added it, and call it stale."""
    dated = set()
    for path in sorted(tables.RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        assert {"date", "machine"} <= data.keys(), path
        assert data.keys() & {"command", "argv"} or "preset" in data.get("meta", {}), path
        if not data.get("commit"):
            assert data["date"] in tables.COMMITTED_IN, path
            assert "stale until rerun" in tables.provenance(data)
            dated.add(data["date"])
    assert dated == set(tables.COMMITTED_IN)  # no entry outlives its JSON's rerun


def _summary(values):
    return {"mean": values, "min": values, "max": values}


def test_the_plateau_and_normalisation_tables_are_their_json(tmp_path, monkeypatch):
    """Each row of a plateau probe: its initialisation, optimizer and γ_0, the odd
    convolutions' RMS and dead fractions, the first and last window's loss (a run that
    turned non-finite says so and shows no dead fractions); each optimizer of the
    normalisation benchmark: both NiNs' γ_0 and per-epoch values."""
    config = {"width": 0.5, "seeds": [0], "batch_size": 32, "dataset": "mnist"}
    common = {"dataset": "mnist", "train_examples": 20000, "test_examples": 10000}
    common |= {"command": "python -m x", "date": "2026-12-05 09:00", "commit": "abcdef0"}
    layers = [0.1 * i for i in range(9)]
    plateau = {
        **common,
        "config": config,
        "steps": 300,
        "window": 50,
        "rows": [
            {
                "init": "he+bn",
                "optimizer": "inna",
                "lr": 1.0,
                "init_loss": 2.5,
                "init_logit_std": 0.8,
                "preact_rms_init": layers,
                "dead_end": layers,
                "loss_windows": [2.1, 1.5, 0.6],
            },
            {
                "init": "keras",
                "optimizer": "adam",
                "lr": 1e-3,
                "init_loss": 2.3,
                "init_logit_std": 0.001,
                "preact_rms_init": layers,
                "dead_end": layers,
                "loss_windows": [2.3, float("nan")],
            },
        ],
    }
    rows = [
        {
            "optimizer": name,
            "norm": norm,
            "lr": lr,
            "train_loss": _summary([2.0, 1.0 + norm]),
            "test_accuracy": _summary([0.1, 0.5]),
        }
        for name, lr in (("sgd", 0.1), ("adam", 1e-3))
        for norm in (False, True)
    ]
    (tmp_path / "plateau_x.json").write_text(json.dumps(plateau))
    (tmp_path / "normalisation_x.json").write_text(
        json.dumps({**common, "config": config, "rows": rows})
    )
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    lines = tables.render("plateau", "plateau_x")
    assert lines[2] == (
        "| He + BatchNorm, INNA 1 | 2.50, 0.800 | 0.00 0.20 0.40 0.60 0.80 | "
        "0.00 0.20 0.40 0.60 0.80 | 2.100 → 0.600 |"
    )
    assert lines[3].startswith("| Keras 2.2 (std 0.05), Adam 1e-3 |")
    assert lines[3].endswith("|  | non-finite |")
    assert "dropout 0.5, q = 1/2" in lines[-1] and "commit `abcdef0`" in lines[-1]
    lines = tables.render("normalisation", "normalisation_x")
    assert (
        lines[2]
        == "| SGD | 0.1: 2.000 → 1.000, 10.00% → 50.00% | 0.1: 2.000 → 2.000, 10.00% → 50.00% |"
    )
    assert lines[3].startswith("| Adam | 1e-3: ")
    assert "2 epochs of batch 32" in lines[-1]
