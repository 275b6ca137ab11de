"""A generated pool of spec-only tools the size of the paper's (5,011 APIs in 49 categories).

Each category has six entities (Weather: station, forecast, alert, ...); each entity gets the
operations a RapidAPI-style service offers (search, list, details, create, update, delete,
availability, status, statistics, distance, report export, sharing, subscriptions, links to a
related entity), and each category two converters (units, currency). Ids are shared the way
real APIs share them (``search_stations`` returns ``stations[].station_id``, which
``get_station_details`` takes; details name a related entity's id), so the judge finds edges.
Some noise is mixed in like in scraped specs: camelCase names, tools without a response
schema, BFCL-format files next to OpenAI-format ones.

    python -m benchmarks.synthetic_pool OUT_DIR [--tools 5000] [--seed 0]

writes ``OUT_DIR/<category>/*.json[l]``, a valid ``MAGNET_TOOLS_DIR``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

CATEGORIES: dict[str, list[str]] = {
    "advertising": ["campaign", "ad_group", "creative", "audience", "placement", "budget"],
    "artificial_intelligence": ["model", "dataset", "training_job", "endpoint", "prompt", "evaluation"],
    "business": ["company", "contact", "deal", "invoice", "quote", "lead"],
    "business_software": ["workspace", "project", "task", "timesheet", "document", "approval"],
    "commerce": ["storefront", "catalog", "listing", "coupon", "basket", "checkout"],
    "communication": ["channel", "thread", "call", "voicemail", "meeting", "participant"],
    "cryptography": ["keypair", "certificate", "signature", "vault", "secret", "hash_job"],
    "cybersecurity": ["vulnerability", "scan", "incident", "firewall_rule", "threat", "asset_tag"],
    "data": ["pipeline", "table", "schema", "query_job", "snapshot", "connector"],
    "database": ["cluster", "database_instance", "backup", "replica", "index", "migration"],
    "devices": ["device", "sensor", "firmware", "gateway", "reading", "device_group"],
    "ecommerce": ["product", "order", "shipment", "return_request", "review", "wishlist"],
    "education": ["course", "lesson", "student", "assignment", "grade", "classroom"],
    "email": ["mailbox", "email", "draft", "mailing_list", "template", "bounce"],
    "energy": ["meter", "tariff", "solar_panel", "charging_station", "outage", "usage_report"],
    "entertainment": ["show", "episode", "ticket", "venue", "performer", "festival"],
    "events": ["event", "registration", "session", "speaker", "sponsor", "badge"],
    "finance": ["account", "transaction", "budget_plan", "bill", "card", "statement"],
    "financial": ["stock", "bond", "fund", "portfolio", "dividend", "watchlist"],
    "food": ["recipe", "restaurant", "menu", "dish", "reservation", "ingredient"],
    "gaming": ["game", "player", "match", "tournament", "leaderboard", "achievement"],
    "health_and_fitness": ["workout", "exercise", "meal_plan", "step_log", "trainer", "goal"],
    "jobs": ["job_posting", "applicant", "application", "interview", "employer", "offer"],
    "location": ["place", "address", "region", "geofence", "landmark", "neighborhood"],
    "logistics": ["parcel", "warehouse", "carrier", "pickup", "pallet", "route_plan"],
    "mapping": ["map", "tile", "layer", "marker", "boundary", "elevation_profile"],
    "media": ["asset", "album", "playlist_item", "caption", "license", "collection"],
    "medical": ["patient", "appointment", "prescription", "doctor", "lab_result", "clinic"],
    "monitoring": ["monitor", "check", "alert_rule", "uptime_report", "status_page", "probe"],
    "movies": ["movie", "actor", "screening", "cinema", "rating", "trailer"],
    "music": ["song", "artist", "playlist", "concert", "label", "lyric"],
    "news_media": ["article", "author", "feed", "topic", "headline", "publisher"],
    "other": ["widget", "note", "bookmark", "reminder", "tag", "poll"],
    "payments": ["payment", "payout", "refund", "customer", "subscription_plan", "dispute"],
    "reward": ["loyalty_member", "reward", "voucher", "points_ledger", "tier", "referral"],
    "science": ["experiment", "sample", "instrument", "publication", "observation", "protocol"],
    "search": ["search_index", "crawler", "document_hit", "synonym_set", "query_log", "ranking"],
    "sms": ["sms_message", "phone_number", "sender_id", "sms_campaign", "opt_out", "delivery_report"],
    "social": ["profile", "post", "comment", "group", "friend_request", "story"],
    "sports": ["team", "league", "fixture", "athlete", "standing", "venue_booking"],
    "storage": ["bucket", "file_object", "folder", "upload_session", "share_link", "quota"],
    "text_analysis": ["text_document", "entity_extraction", "sentiment_job", "summary", "keyword_set", "language_detection"],
    "tools": ["shortened_url", "qr_code", "pdf_job", "screenshot", "webhook", "cron_job"],
    "transportation": ["vehicle", "trip", "driver", "ride", "fare", "station_stop"],
    "translation": ["translation_job", "glossary", "language_pair", "translator", "memory_entry", "subtitle_file"],
    "travel": ["flight", "hotel", "booking", "itinerary", "traveler", "airport"],
    "video_images": ["video", "image", "thumbnail", "transcode_job", "watermark", "gallery"],
    "visual_recognition": ["face", "label_detection", "ocr_job", "object_detection", "image_set", "landmark_match"],
    "weather": ["weather_station", "forecast", "weather_alert", "radar_image", "air_quality_report", "climate_record"],
}

UNITS = ["miles", "km", "meters", "feet"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY"]


def plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def words(noun: str) -> str:
    return noun.replace("_", " ")


def s(description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def obj(properties: dict[str, Any], description: str, required: list[str] | None = None) -> dict[str, Any]:
    out = {"type": "object", "description": description, "properties": properties}
    if required:
        out["required"] = required
    return out


def _tool(
    name: str, description: str, tool_class: str, params: dict[str, Any], required: list[str], response: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "tool_class": tool_class,
        "parameters": {"type": "object", "properties": params, "required": required},
        "response": response,
    }


def entity_tools(category: str, entity: str, related: str, rng: random.Random) -> list[dict[str, Any]]:
    """The operations on one entity (17 tools)."""
    e, es, w, r = entity, plural(entity), words(entity), related
    eid, rid = f"{e}_id", f"{r}_id"
    idp = s(f"Identifier of the {w}.")
    manage, analytics, notify = f"{w.title()} management", f"{w.title()} analytics", f"{w.title()} notifications"
    summary = obj({eid: s(f"Identifier of the {w}."), "name": s(f"Name of the {w}.")}, f"A {w}.")
    tools = [
        _tool(
            f"search_{es}",
            f"Search {plural(w)} by keyword.",
            manage,
            {"query": s("Words to look for."), "limit": s("Maximum number of results.", "integer")},
            ["query"],
            obj(
                {
                    es: {
                        "type": "array",
                        "description": f"Matching {plural(w)}, best first.",
                        "items": obj(
                            {eid: s(f"Identifier of the {w}."), "name": s(f"Name of the {w}."), "score": s("Relevance score.", "number")},
                            f"A matching {w}.",
                        ),
                    },
                    "total": s("Number of matches.", "integer"),
                },
                f"{plural(w).title()} matching the search.",
            ),
        ),
        _tool(
            f"list_{es}",
            f"List the {plural(w)} of the account, page by page.",
            manage,
            {"page_token": s("Token of the page to fetch; omit for the first page."), "page_size": s("Items per page.", "integer")},
            [],
            obj(
                {
                    es: {"type": "array", "items": summary, "description": f"The {plural(w)} on this page."},
                    "next_page_token": s("Token of the next page; empty on the last page."),
                },
                f"A page of {plural(w)}.",
            ),
        ),
        _tool(
            f"get_{e}_details",
            f"Full details of one {w}.",
            manage,
            {eid: idp},
            [eid],
            obj(
                {
                    eid: s(f"Identifier of the {w}."),
                    "name": s(f"Name of the {w}."),
                    "description": s(f"What the {w} is."),
                    "created_at": s("Creation time, ISO 8601."),
                    rid: s(f"Identifier of the {words(r)} it belongs to."),
                    "price": s("Price of the item.", "number"),
                    "currency": s("Currency of the price (ISO code)."),
                },
                f"One {w}.",
            ),
        ),
        _tool(
            f"create_{e}",
            f"Create a new {w}.",
            manage,
            {
                "name": s(f"Name of the new {w}."),
                "description": s(f"What the {w} is for."),
                rid: s(f"Identifier of the {words(r)} to attach it to."),
            },
            ["name"],
            obj(
                {eid: s(f"Identifier of the created {w}."), "status": s("State of the new item.", enum=["active", "pending"])},
                f"The created {w}.",
            ),
        ),
        _tool(
            f"update_{e}",
            f"Change the name or description of a {w}.",
            manage,
            {eid: idp, "name": s("New name."), "description": s("New description.")},
            [eid],
            obj({eid: s(f"Identifier of the {w}."), "updated": s("True when something changed.", "boolean")}, "Outcome of the update."),
        ),
        _tool(
            f"delete_{e}",
            f"Delete a {w}.",
            manage,
            {eid: idp},
            [eid],
            obj({"success": s("Whether it was deleted.", "boolean"), "message": s("What happened.")}, "Outcome of the deletion."),
        ),
        _tool(
            f"check_{e}_availability",
            f"Whether a {w} is available on a date.",
            manage,
            {eid: idp, "date": s("Day asked about, YYYY-MM-DD.")},
            [eid],
            obj(
                {
                    eid: s(f"Identifier of the {w}."),
                    "available": s(f"True when the {w} can be used on that date.", "boolean"),
                    "next_available_date": s("Next free day, YYYY-MM-DD."),
                },
                f"Availability of a {w}.",
            ),
        ),
        _tool(
            f"get_{e}_status",
            f"Current state of a {w}.",
            manage,
            {eid: idp},
            [eid],
            obj(
                {eid: s(f"Identifier of the {w}."), "status": s(f"State of the {w}.", enum=["active", "paused", "closed"])},
                f"State of a {w}.",
            ),
        ),
        _tool(
            f"get_{e}_statistics",
            f"Usage statistics of a {w} over a period.",
            analytics,
            {eid: idp, "period": s("Period covered.", enum=["day", "week", "month"])},
            [eid],
            obj(
                {
                    eid: s(f"Identifier of the {w}."),
                    "views": s("Number of views.", "integer"),
                    "rating": s("Average rating, 1 to 5.", "number"),
                },
                f"Statistics of a {w}.",
            ),
        ),
        _tool(
            f"measure_{e}_distance",
            f"Distance from a {w} to an address, in miles.",
            analytics,
            {eid: idp, "address": s("Street address to measure to.")},
            [eid, "address"],
            obj(
                {"distance": s("Distance value.", "number"), "unit": s("Unit of the distance; always miles.", const="miles")}, "A distance."
            ),
        ),
        _tool(
            f"export_{e}_report",
            f"Export a report about a {w}.",
            analytics,
            {eid: idp, "format": s("File format.", enum=["pdf", "csv", "json"])},
            [eid],
            obj(
                {f"{e}_report_id": s("Identifier of the report."), "download_url": s("Where the report can be downloaded.")},
                "An exported report.",
            ),
        ),
        _tool(
            f"get_{e}_report",
            f"Content of an exported {w} report.",
            analytics,
            {f"{e}_report_id": s("Identifier of the report.")},
            [f"{e}_report_id"],
            obj(
                {
                    f"{e}_report_id": s("Identifier of the report."),
                    "content": s("Text of the report."),
                    "generated_at": s("When it was made."),
                },
                "A report.",
            ),
        ),
        _tool(
            f"share_{e}",
            f"Share a {w} with someone by email.",
            notify,
            {eid: idp, "email": s("Email address of the recipient.")},
            [eid, "email"],
            obj({f"{e}_share_id": s("Identifier of the share."), "link": s("Link the recipient receives.")}, "A share."),
        ),
        _tool(
            f"subscribe_to_{e}_updates",
            f"Get a webhook call whenever a {w} changes.",
            notify,
            {eid: idp, "webhook_url": s("URL that receives the updates.")},
            [eid, "webhook_url"],
            obj(
                {f"{e}_subscription_id": s("Identifier of the subscription."), "status": s("State of the subscription.")}, "A subscription."
            ),
        ),
        _tool(
            f"cancel_{e}_subscription",
            f"Stop the updates of a {w} subscription.",
            notify,
            {f"{e}_subscription_id": s("Identifier of the subscription.")},
            [f"{e}_subscription_id"],
            obj(
                {f"{e}_subscription_id": s("Identifier of the subscription."), "cancelled": s("True when it was stopped.", "boolean")},
                "Outcome.",
            ),
        ),
        _tool(
            f"list_{e}_{plural(r)}",
            f"The {plural(words(r))} linked to a {w}.",
            manage,
            {eid: idp},
            [eid],
            obj(
                {
                    plural(r): {
                        "type": "array",
                        "description": f"Linked {plural(words(r))}.",
                        "items": obj({rid: s(f"Identifier of the {words(r)}."), "name": s("Its name.")}, f"A {words(r)}."),
                    }
                },
                "Linked items.",
            ),
        ),
        _tool(
            f"link_{e}_to_{r}",
            f"Link a {w} to a {words(r)}.",
            manage,
            {eid: idp, rid: s(f"Identifier of the {words(r)}.")},
            [eid, rid],
            obj(
                {eid: s(f"Identifier of the {w}."), rid: s(f"Identifier of the {words(r)}."), "linked": s("True when linked.", "boolean")},
                "Outcome.",
            ),
        ),
    ]
    if rng.random() < 0.25:  # camelCase ids, as in many scraped specs
        camel = "".join(p.title() if i else p for i, p in enumerate(eid.split("_")))
        for t in tools:
            props = t["parameters"]["properties"]
            if eid in props:
                props[camel] = props.pop(eid)
                t["parameters"]["required"] = [camel if x == eid else x for x in t["parameters"]["required"]]
    for t in tools:
        if rng.random() < 0.05:  # no response schema
            t["response"] = {}
    return tools


def category_tools(category: str) -> list[dict[str, Any]]:
    w = words(category)
    return [
        _tool(
            f"convert_{category}_units",
            "Convert a distance between miles, kilometres, metres and feet.",
            f"{w.title()} utilities",
            {
                "value": s("The distance to convert.", "number"),
                "from_unit": s("Unit of the value.", enum=UNITS),
                "to_unit": s("Unit to convert to.", enum=UNITS),
            },
            ["value", "from_unit", "to_unit"],
            obj({"value": s("The converted distance.", "number"), "unit": s("Unit of the result.")}, "A converted distance."),
        ),
        _tool(
            f"convert_{category}_currency",
            "Convert an amount between currencies at today's rate.",
            f"{w.title()} utilities",
            {
                "amount": s("Amount to convert.", "number"),
                "from_currency": s("Currency of the amount.", enum=CURRENCIES),
                "to_currency": s("Currency to convert to.", enum=CURRENCIES),
            },
            ["amount", "from_currency", "to_currency"],
            obj(
                {"converted_amount": s("The amount in the target currency.", "number"), "currency": s("Target currency.")},
                "A converted amount.",
            ),
        ),
    ]


def generate(total: int = 5000, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """``{category: [tool, ...]}`` with ``total`` tools over the 49 categories."""
    rng = random.Random(seed)
    pool: dict[str, list[dict[str, Any]]] = {}
    for category, entities in CATEGORIES.items():
        tools = category_tools(category)
        for i, entity in enumerate(entities):
            tools += entity_tools(category, entity, entities[(i + 1) % len(entities)], rng)
        pool[category] = tools
    available = sum(len(t) for t in pool.values())
    if total > available:
        raise ValueError(f"at most {available} tools can be generated, asked for {total}")
    names = sorted(pool)
    share, extra = divmod(total, len(names))
    for i, category in enumerate(names):
        keep = share + (1 if i < extra else 0)
        tools = pool[category]
        drop = set(rng.sample(range(2, len(tools)), len(tools) - keep))  # keep the converters
        pool[category] = [t for j, t in enumerate(tools) if j not in drop]
    return pool


def write_pool(out_dir: str | Path, total: int = 5000, seed: int = 0) -> dict[str, int]:
    """Write the pool as spec files: OpenAI format per tool class, the converters in BFCL
    JSON lines (``"type": "dict"``). Returns tools per category."""
    out = Path(out_dir)
    counts = {}
    for category, tools in generate(total, seed).items():
        folder = out / category
        folder.mkdir(parents=True, exist_ok=True)
        by_class: dict[str, list[dict[str, Any]]] = {}
        for t in tools:
            by_class.setdefault(t["tool_class"], []).append(t)
        for tool_class, members in by_class.items():
            stem = tool_class.lower().replace(" ", "_")
            if tool_class.endswith("utilities"):
                lines = []
                for t in members:
                    bfcl = json.loads(json.dumps(t))
                    bfcl["parameters"]["type"] = "dict"
                    lines.append(json.dumps(bfcl))
                (folder / f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
            else:
                (folder / f"{stem}.json").write_text(json.dumps([{"type": "function", "function": t} for t in members], indent=1))
        counts[category] = len(tools)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--tools", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = write_pool(args.out_dir, args.tools, args.seed)
    print(f"wrote {sum(counts.values())} tools in {len(counts)} categories to {args.out_dir}")


if __name__ == "__main__":
    main()
