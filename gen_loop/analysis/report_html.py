"""The report page, rendered from the same JSON data that ``analysis.json`` holds.

Rendering from the JSON (not from the live objects) guarantees that every number on the page
is in ``analysis.json``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["render_html"]

_ESTIMATORS = {
    "knn": "mean real loss of the k nearest labeled images in embedding space",
    "confidence": "ridge regression from the detector's confidence statistics "
    "(confident / uncertain detections, max and mean confidence, entropy) to the real loss",
    "ensemble": "mean of the k-NN and the confidence-regression estimates",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.4;padding:0 16px}
h1{margin-bottom:4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.shift{color:#b00;font-weight:600}.ok{color:#070;font-weight:600}
.flag{background:#fff3cd;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0}
.hint{background:#e8f4fd;border-left:4px solid #1f77b4;padding:6px 10px;margin:4px 0}
.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;width:164px;font-size:11px}
.gallery img{width:160px;border:1px solid #ccc}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;
vertical-align:middle}img.fig{max-width:100%;border:1px solid #eee}
.muted{color:#666;font-size:13px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.0f}"
    return _e(value)


def _swatch(name: str, colors: Mapping[str, str]) -> str:
    color = colors.get(name, "#999")
    return f'<span class="swatch" style="background:{color}"></span>{_e(name)}'


def _img(file: str | None, alt: str) -> str:
    return f'<p><img class="fig" src="{_e(file)}" alt="{_e(alt)}"></p>' if file else ""


def _sets(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><td class="l">{_swatch(o["name"], colors)}</td><td>{o["n_images"]}</td>'
        f"<td>{_num(o['labeled'])}</td><td>{o['n_skipped']}</td>"
        f'<td class="l">{_e(o["description"])}</td></tr>'
        for o in data["origins"]
    )
    head = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in data.get("header", {}).items())
    return (
        f"<p>Reference: <b>{_e(data['reference'])}</b>. Every set is compared with it.</p>"
        f"<ul class='muted'>{head}</ul>"
        '<table><tr><th class="l">set</th><th>images</th><th>labeled</th><th>skipped</th>'
        f'<th class="l">source</th></tr>{rows}</table>'
    )


def _shift(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    alpha = data["settings"]["alpha"]
    rows = []
    for s in data["shift"]:
        cls = "shift" if s["shifted"] else "ok"
        word = f"shift ({s['size']})" if s["shifted"] else "no shift"
        floor = (
            f"{_num(s['noise_floor'])} ± {_num(s['noise_floor_std'])} (batch "
            f"{s['floor_batch_size']})"
            if s["noise_floor"] is not None
            else "–"
        )
        rows.append(
            f'<tr><td class="l">{_swatch(s["origin"], colors)}</td>'
            f'<td class="l {cls}">{_e(word)}</td>'
            f"<td>{_num(s['auc'])}</td><td>{_num(s['auc_p'])}</td>"
            f"<td>{_num(s['mmd2'], 4)}</td><td>{_num(s['mmd_p'])}</td>"
            f"<td>{_num(s['centroid_distance'])}</td><td>{floor}</td>"
            f"<td>{_num(s['floor_ratio'], 2)}</td>"
            f'<td class="l muted">{_e(s["note"])}</td></tr>'
        )
    return (
        f"<p class='muted'>A shift is called when the classifier's or the MMD test's permutation "
        f"p-value is at most {alpha / 2:g} ({alpha:g} split over the two tests) and the centroid "
        "is farther than the noise floor, so two samples of one camera are called shifted at most "
        f"{alpha:.0%} of the time. Size from the AUC: slight &lt; 0.6 ≤ moderate &lt; 0.8 ≤ "
        "large &lt; 0.95 ≤ separable. The centroid ratio is the loop's own measure: 1 means "
        "as close as a batch of real reference images.</p>"
        '<table><tr><th class="l">set</th><th class="l">verdict</th><th>classifier AUC</th>'
        "<th>p</th><th>MMD²</th><th>p</th><th>centroid distance</th><th>noise floor</th>"
        f'<th>ratio</th><th class="l">note</th></tr>{"".join(rows)}</table>'
        + "".join(f"<p>{_e(s['origin'])}: {_e(s['verdict'])}</p>" for s in data["shift"])
    )


def _clusters(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    cl = data["clusters"]
    if cl is None:
        return "<p>Not enough images to cluster.</p>"
    sil = ", ".join(f"k={k}: {_num(v)}" for k, v in cl["silhouette"].items())
    flags = "".join(f'<div class="flag">⚠ {_e(f["text"])}</div>' for f in cl["flags"])
    if not flags:
        flags = "<p>No under-represented cluster.</p>"
    names = [o["name"] for o in data["origins"]]
    parts = []
    for c, items in data["cluster_galleries"].items():
        mix = ", ".join(f"{_e(n)} {cl['counts'][int(c)][n]}" for n in names)
        figs = "".join(
            f'<figure><img src="{_e(it["file"])}" alt="cluster {c}">'
            f"<figcaption>{_swatch(it['origin'], colors)} {_e(_short(it['path']))}"
            "</figcaption></figure>"
            for it in items
        )
        parts.append(f"<h3>cluster {c}: {mix}</h3><div class='gallery'>{figs}</div>")
    return (
        f"<p>k-means with k = {cl['k']} (silhouette {sil}). Thumbnails: the images nearest "
        "each cluster's centre, from each set in turn; the strip on top is the set's colour.</p>"
        + _img(data["figures"].get("clusters"), "clusters")
        + flags
        + "".join(parts)
    )


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _properties(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    parts = []
    for origin, effects in data["properties"].items():
        hints = "".join(
            f'<div class="hint">→ {_e(h["text"])}</div>' for h in data["suggestions"][origin]
        )
        rows = "".join(
            f"<tr><td>{e['rank']}</td><td class='l'>{_e(e['label'])}</td>"
            f"<td>{_num(e['median_origin'])}</td><td>{_num(e['median_reference'])}</td>"
            f"<td>{_num(e['ks'], 2)}</td><td>{_num(e['ks_p'])}</td>"
            f"<td>{_num(e['wasserstein'])}</td><td>{_num(e['wasserstein_std'], 2)}</td>"
            f"<td>{_num(e['spearman_rho'], 2)}</td></tr>"
            for e in effects
        )
        parts.append(
            f"<h3>{_swatch(origin, colors)} vs {_e(data['reference'])}</h3>"
            + (hints or "<p>No significant property difference maps onto a parameter.</p>")
            + "<table><tr><th>rank</th><th class='l'>property</th>"
            f"<th>median {_e(origin)}</th><th>median {_e(data['reference'])}</th><th>KS</th>"
            "<th>KS p</th><th>Wasserstein</th><th>W / std</th><th>Spearman ρ with distance"
            f"</th></tr>{rows}</table>"
        )
    return (
        "<p class='muted'>Per-image properties in RGB order. Ranked by the Kolmogorov-Smirnov "
        "statistic (1 = the distributions do not overlap), ties by the Wasserstein distance in "
        "units of the pooled std. Spearman ρ: correlation with each image's distance to the "
        "reference centroid over both sets. Suggestions need KS p ≤ alpha / (number of "
        "properties) and move one parameter at a time; the search in <code>run</code> resolves "
        "trade-offs.</p>"
        + "".join(parts)
        + "<h3>Distributions of the top-ranked properties</h3>"
        + _img(data["figures"].get("properties_top"), "top properties")
        + "<details><summary>all properties</summary>"
        + _img(data["figures"].get("properties_all"), "all properties")
        + "</details>"
    )


def _loss(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    pl = data["predicted_loss"]
    if not pl["computed"]:
        return "<p>Not computed (no detector output or no labeled set; see the notes).</p>"
    rows = "".join(
        f"<tr><td class='l'>{_swatch(ev['origin'], colors)}</td><td>{ev['n']}</td>"
        f"<td>{_num(ev['spearman_rho'])}</td><td>{_num(ev['spearman_p'])}</td>"
        f"<td>{_num(ev['mean_real'])}</td><td>{_num(ev['mean_predicted'])}</td>"
        f"<td>{_num(ev['out_of_fold'])}</td></tr>"
        for ev in pl["evaluation"]
    )
    desc = _ESTIMATORS.get(pl["estimator"], pl["estimator"])
    return (
        f"<p>Estimator <b>{_e(pl['estimator'])}</b>: {_e(desc)}, learned from the real "
        f"per-image loss (box + cls + dfl) of the labeled sets "
        f"{_e(', '.join(pl['train_sets']))}. Where a set's labels are known the estimate is "
        "checked against its real loss (out-of-fold for the training sets).</p>"
        "<table><tr><th class='l'>set</th><th>n</th><th>Spearman ρ</th><th>p</th>"
        f"<th>mean real loss</th><th>mean predicted</th><th>out-of-fold</th></tr>{rows}</table>"
        + _img(data["figures"].get("loss"), "predicted loss")
        + _img(data["figures"].get("projection_loss"), "projection sized by predicted loss")
    )


def _errors(data: dict[str, Any]) -> str:
    items = data["error_gallery"]
    if not items:
        return "<p>No detector output.</p>"
    figs = "".join(
        f'<figure><img src="{_e(it["file"])}" alt="sample"><figcaption>{_e(_short(it["path"]))}'
        f"<br>predicted loss {_num(it['predicted_loss'])}"
        + (f", real {_num(it['real_loss'])}" if it["real_loss"] is not None else "")
        + f"<br>max conf {_num(it['max_conf'])}, {_num(it['n_detections'])} detections"
        "</figcaption></figure>"
        for it in items
    )
    return (
        f"<p>{_e(data['reference'])} images, highest predicted loss first, with the detector's "
        "detections (confidence ≥ 0.25; blue car, orange truck, red pedestrian).</p>"
        f"<div class='gallery'>{figs}</div>"
    )


def _notes(data: dict[str, Any]) -> str:
    lines = [f"<li>{_e(n)}</li>" for n in data["notes"]]
    for o in data["origins"]:
        for s in o["skipped"][:20]:
            lines.append(f"<li>{_e(o['name'])}: skipped {_e(s['path'])} ({_e(s['reason'])})</li>")
    for f in data.get("failed_sets", []):
        lines.append(f"<li class='shift'>set {_e(f['name'])} not analysed: {_e(f['reason'])}</li>")
    return f"<ul>{''.join(lines)}</ul>" if lines else "<p>None.</p>"


def _route(data: dict[str, Any]) -> str:
    route = data.get("route")
    if not route:
        return ""
    where = ""
    if route.get("best_percentile") is not None:
        where = (
            f" The best trial's centroid lies closer to the target's centre than "
            f"{route['best_percentile']:.0%} of the target's own images do (in this plane)."
        )
    return _img(data["figures"].get("route"), "route") + (
        f"<p class='muted'>Each of the {len(route['numbers'])} trials' batch centroid, projected "
        "into the population plot's plane and joined in trial order (colour: trial number; "
        f"square: the first trial, the simulator's current camera; star: the best).{where}</p>"
    )


def render_html(data: dict[str, Any], colors: Mapping[str, str]) -> str:
    """The report page for JSON-ready analysis data (see :func:`report.to_json_dict`)."""
    sections = [
        ("Sets", _sets(data, colors)),
        ("The search's route", _route(data)),
        ("Is there a shift?", _shift(data, colors)),
        (
            "Population exploration",
            _img(data["figures"].get("projection"), "projection")
            + "<p class='muted'>Every image embedded by the detector's backbone and projected "
            "to 2-D; the PCA is saved as projection.npz for later comparable plots.</p>",
        ),
        ("Clusters", _clusters(data, colors)),
        ("What explains the gap", _properties(data, colors)),
        ("Predicted loss", _loss(data, colors)),
        ("Sample errors", _errors(data)),
        ("Notes", _notes(data)),
    ]
    body = "".join(f"<h2>{_e(title)}</h2>{content}" for title, content in sections if content)
    top = "".join(f"<li>{_e(line)}</li>" for line in data.get("headline", []))
    heading = data.get("title") or "Domain gap analysis"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>gen_loop analysis</title>"
        f"<style>{_CSS}</style></head><body><h1>{_e(heading)}</h1>"
        f"<ul class='headline'>{top}</ul>"
        f"<p class='muted'>gen_loop · all numbers are in analysis.json</p>{body}"
        "</body></html>\n"
    )
