"""The `pulse` command: serve, worker, migrate, demo, users, apikeys, surveys, retention."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pulse import db, logs, storage, translations
from pulse.catalog import CatalogError, load_catalog
from pulse.errors import PulseError
from pulse.settings import Settings, SettingsError, load_settings

DESCRIPTION = "Pulse: continuous pulse surveys after every touchpoint, with rolling loyalty trends."
CLOSE_GRACE = 2.0  # seconds the worker waits for its database connections to close on the way out
REQUEST_GRACE = 10  # seconds a web process of `serve --processes N` lets requests finish when told to stop


def _proxy_options(settings: Settings) -> dict[str, object]:
    """uvicorn's options for forwarded headers: believed only from PULSE_FORWARDED_ALLOW_IPS, never when it is empty."""
    trusted = list(settings.forwarded_allow_ips)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    processes = args.processes or settings.processes
    if processes > 1 and settings.is_sqlite:
        print(
            f"Error: {processes} web processes need PostgreSQL: on SQLite one `pulse serve` does the work "
            "(its writers take turns on one file), so run it with --processes 1, or set PULSE_DATABASE_URL to a "
            "postgres:// database to scale out.",
            file=sys.stderr,
        )
        return 2
    asyncio.run(storage.check_ready(settings.database_url))  # one sentence now, not a traceback from the lifespan
    catalog = load_catalog(settings.surveys_dir)  # a bad survey stops start-up here, once, not in every process
    if processes > 1:
        return _serve_processes(settings, args, processes)

    from pulse.app import create_app

    if not args.no_worker and not settings.is_sqlite:
        logging.getLogger("pulse").info("running the worker loops in this process (use --no-worker to split)")
    app = create_app(settings, catalog=catalog, run_worker=not args.no_worker)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=settings.log_level, **_proxy_options(settings)
    )
    logs.install(app)  # after uvicorn.Config, which configures the uvicorn loggers
    # What start-up built lives as long as the process: out of the collector's sight, a full collection during
    # a 1,000-event batch walks only what requests made, not every module, model and template as well
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()
    return 0


def _serve_processes(settings: Settings, args: argparse.Namespace, processes: int) -> int:
    """N web processes sharing one listening socket (uvicorn's supervisor); each builds its own app from the
    environment and runs its own lifespan. They run no worker loops: N copies would only compete for the same
    rows, and `pulse worker` processes scale apart from the web."""
    from uvicorn.config import STARTUP_FAILURE, Config
    from uvicorn.supervisors import Multiprocess

    if not args.no_worker:
        logging.getLogger("pulse").info(
            "%d web processes run no worker loops: start `pulse worker` (one or more, on any machine)", processes
        )
    config = Config(
        "pulse.app:app_from_environment",
        factory=True,
        workers=processes,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=REQUEST_GRACE,  # the parent waits for every child: none may hang it
        **_proxy_options(settings),
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()  # until SIGTERM or SIGINT: then every child gets SIGTERM and is waited for
    failed = any(child.exitcode == STARTUP_FAILURE for child in supervisor.processes)
    return 1 if failed else 0


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await `work` unless a stop signal comes first (then cancel it); False when the signal came first."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task in done:
        task.result()  # its exception, if any
        return True
    task.cancel()
    await asyncio.wait({task}, timeout=CLOSE_GRACE)  # not wait_for: it would wait for a task that hangs
    return False


async def _worker(settings: Settings) -> None:
    from tortoise import Tortoise
    from tortoise.connection import connections

    from pulse import worker
    from pulse.sqlite_engine import serving

    catalog = translations.for_sending(load_catalog(settings.surveys_dir), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # first of all: a worker must stop when told, even while it waits
        loop.add_signal_handler(sig, stop.set)
    # reachable and fully migrated, or one sentence and exit: never loops that fail forever
    if not await _unless_stopped(storage.check_ready(settings.database_url), stop):
        return
    if settings.is_sqlite:
        print(
            "Note: on SQLite, `pulse serve` runs the worker loops itself; start it with --no-worker when this "
            "worker shares its file (writers take turns: each transaction begins IMMEDIATE and waits its turn).",
            file=sys.stderr,
        )
    await Tortoise.init(config=db.tortoise_config(settings.database_url))  # in this task: its context is ours
    try:
        async with serving(connections.get("default")), worker.running(settings, catalog):
            await stop.wait()
    finally:  # a database that hangs must not hold the exit (wait_for would wait for the cancelled close)
        closing = asyncio.ensure_future(Tortoise.close_connections())
        await asyncio.wait({closing}, timeout=CLOSE_GRACE)
        if not closing.done():
            closing.cancel()


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_worker(settings))
    return 0


async def _migrate(settings: Settings) -> list[str]:
    await storage.check_ready(settings.database_url, migrated=False)
    return await db.migrate(settings.database_url)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = asyncio.run(_migrate(settings))
    print(f"Applied {len(applied)} migration(s)." if applied else "The database is up to date.")
    return 0


def cmd_makemigrations(settings: Settings, args: argparse.Namespace) -> int:
    written = asyncio.run(db.make_migrations())
    for path in written:
        print(f"Created {path}")
    if not written:
        print("No changes detected.")
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pulse.app import record_survey_versions
    from pulse.demo import demo_present, live_touchpoints, load_demo, load_engagement

    catalog = load_catalog(settings.surveys_dir)
    async with db.connected(settings.database_url):
        if await demo_present():
            print("Demo data is already loaded; nothing to do.")
            _print_demo_sign_ins()
            return 0
        await record_survey_versions(catalog)
        with tqdm(total=args.contacts, unit="contact", desc="Demo data", disable=args.quiet) as bar:
            summary = await load_demo(
                catalog,
                contacts=args.contacts,
                months=args.months,
                seed=args.seed,
                timezone=settings.timezone,
                progress=bar.update,
                segments=settings.segment_attributes,
            )
        rounds = await load_engagement(catalog, months=args.months, seed=args.seed)
        live = await live_touchpoints(catalog, settings)
    print(
        f"Loaded {summary.teams} teams, {summary.contacts} contacts, {summary.touchpoints} touchpoints, "
        f"{summary.invitations} invitations and {summary.responses} responses, {rounds} closed pulse rounds;"
        f" {live} surveys are being sent now."
    )
    _print_demo_sign_ins()
    return 0


def _print_demo_sign_ins() -> None:
    from pulse.demo import DEMO_PASSWORD, demo_sign_ins

    print("Sign in at /login as any of these (role, e-mail, password):")
    for role, email in demo_sign_ins():
        print(f"  {role:<8} {email:<32} {DEMO_PASSWORD}")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    if args.surveys_copy:
        from pulse.translation_commands import write_demo_copy

        write_demo_copy(settings, args.surveys_copy)
    return asyncio.run(_demo(settings, args))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise PulseError("The two passwords differ.")
    return first


async def _users_create(settings: Settings, args: argparse.Namespace) -> int:
    from pulse import audit
    from pulse.accounts import create_user

    password = _read_password(args)
    async with db.connected(settings.database_url):
        user = await create_user(
            args.email,
            password,
            args.role,
            display_name=args.name or "",
            locale=args.locale,
            teams=args.team,
            actor=audit.COMMAND_LINE,
        )
    print(f"Created {user.role} {user.email}.")
    return 0


async def _apikeys(settings: Settings, args: argparse.Namespace) -> int:
    from pulse import audit
    from pulse.accounts import create_api_key, revoke_api_key
    from pulse.models import ApiKey

    async with db.connected(settings.database_url):
        if args.apikeys_command == "create":
            key, secret = await create_api_key(args.name, args.scope, actor=audit.COMMAND_LINE)
            print(f"Created API key {key.prefix!r} ({key.name}) with scopes {', '.join(key.scopes)}.")
            print("Store it now; Pulse keeps only its hash and cannot show it again:")
            print(secret)
        elif args.apikeys_command == "list":
            for key in await ApiKey.all().order_by("id"):
                state = "revoked" if key.revoked_at else "active"
                print(f"{key.prefix}  {state:8}  {','.join(key.scopes):40}  {key.name}")
        elif not await revoke_api_key(args.prefix, actor=audit.COMMAND_LINE):
            raise PulseError(f"No active API key with the prefix {args.prefix!r}.")
        else:
            print(f"Revoked API key {args.prefix!r}.")
    return 0


def _read_csv(file: str, parse: Callable[[str], list]) -> list:
    """Rows of a UTF-8 CSV file, or a sentence saying why they cannot be read."""
    try:
        return parse(Path(file).read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise PulseError(f"Cannot read {file}: {error.strerror}.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise PulseError(f"{file} is not a readable UTF-8 CSV file: {error}.") from None


def cmd_import_touchpoints(settings: Settings, args: argparse.Namespace) -> int:
    from pulse.touchpoints import events_from_csv

    return asyncio.run(_import_touchpoints(settings, args, _read_csv(args.file, events_from_csv)))


async def _import_touchpoints(settings: Settings, args: argparse.Namespace, events: list) -> int:
    from collections import Counter

    from tqdm import tqdm

    from pulse.touchpoints import MAX_BATCH, ingest

    catalog = load_catalog(settings.surveys_dir)
    counts: Counter[str] = Counter()
    invalid: list[str] = []
    async with db.connected(settings.database_url):
        with tqdm(total=len(events), unit="event", desc="Import", disable=args.quiet) as bar:
            for start in range(0, len(events), MAX_BATCH):
                for outcome in await ingest(events[start : start + MAX_BATCH], catalog, settings):
                    counts[outcome.status] += 1
                    if outcome.status == "invalid":
                        # line numbers: the header is line 1, so row i (from 0) is line i + 2
                        problems = "; ".join(e["message"] for e in outcome.errors)
                        invalid.append(f"  line {start + outcome.index + 2}: {problems}")
                bar.update(min(MAX_BATCH, len(events) - start))
    print(
        f"{len(events)} rows: {counts['invited']} invited, {counts['skipped']} skipped, "
        f"{counts['duplicate']} duplicate, {counts['invalid']} invalid."
    )
    for line in invalid[:50]:
        print(line)
    if len(invalid) > 50:
        print(f"  … and {len(invalid) - 50} more invalid rows.")
    return 1 if invalid else 0


def cmd_import_employees(settings: Settings, args: argparse.Namespace) -> int:
    from pulse.roster import rows_from_csv

    return asyncio.run(_import_employees(settings, args, _read_csv(args.file, rows_from_csv)))


async def _import_employees(settings: Settings, args: argparse.Namespace, rows: list) -> int:
    from collections import Counter

    from tqdm import tqdm

    from pulse.roster import upsert

    counts: Counter[str] = Counter()
    problems: list[str] = []
    async with db.connected(settings.database_url):
        with tqdm(total=len(rows), unit="employee", desc="Roster", disable=args.quiet) as bar:
            for start in range(0, len(rows), 1000):
                batch = rows[start : start + 1000]
                for result in await upsert(
                    batch, dry_run=args.dry_run, first_line=start + 2, secret_key=settings.secret_key
                ):
                    counts[result.status] += 1
                    problems += [f"  line {result.line}, {e['field']}: {e['message']}" for e in result.errors]
                bar.update(min(1000, len(rows) - start))
    prefix = "Dry run, nothing stored: " if args.dry_run else ""
    print(
        f"{prefix}{len(rows)} rows: {counts['created']} created, {counts['updated']} updated, "
        f"{counts['deactivated']} deactivated, {counts['unchanged']} unchanged, {counts['invalid']} invalid"
        + (f", {counts['erased']} skipped (erased people)." if counts["erased"] else ".")
    )
    for line in problems[:100]:
        print(line)
    return 1 if problems else 0


async def _send_due(settings: Settings, args: argparse.Namespace) -> int:
    from pulse.outbox import Dispatcher
    from pulse.rendering import environment

    catalog = translations.for_sending(load_catalog(settings.surveys_dir), settings)
    total = 0
    await storage.check_ready(settings.database_url)
    async with db.connected(settings.database_url):
        dispatcher = Dispatcher(settings, catalog, environment())
        try:
            while handled := await dispatcher.step():
                total += handled
        finally:
            await dispatcher.close()
    print(f"Handled {total} due e-mail(s).")
    return 0


async def _rollups_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from tqdm import tqdm

    from pulse import loyalty, rollups

    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise PulseError(f"--since must be a date such as 2026-01-31, not {args.since!r}.") from None

    def chunk_done(first_day: str) -> None:  # the rebuild goes a month of days at a time
        bar.set_postfix_str(f"from {first_day}", refresh=False)
        bar.update()

    async with db.connected(settings.database_url):
        with tqdm(unit="month", desc="Rollups", disable=args.quiet) as bar:
            rows = await rollups.rebuild(settings.segment_attributes, since, progress=chunk_done)
        latest = await loyalty.rebuild()  # one statement over every answer: the loyalty quadrant's table
    print(f"Rebuilt {latest} latest answers per contact and survey (loyalty).")
    print(f"Rebuilt {rows} daily rollup rows" + (f" from {since.isoformat()}." if since else "."))
    return 0


async def _retention(settings: Settings, args: argparse.Namespace) -> int:
    from pulse import audit, retention

    policy = retention.Policy.from_settings(settings)
    async with db.connected(settings.database_url):
        if args.dry_run:
            counts = await retention.plan(policy)
        else:
            counts = await retention.run(policy, actor=audit.COMMAND_LINE)
    print("Would blank or delete (dry run; nothing changed):" if args.dry_run else "Blanked or deleted:")
    for kind, count in counts.items():
        days = policy.days(kind)
        kept = f"{retention.KINDS[kind]}={days}" if days else f"{retention.KINDS[kind]}=0, kept forever"
        print(f"  {kind:<17} {count:>9}  ({kept})")
    return 0


async def _export_responses(settings: Settings, args: argparse.Namespace) -> int:
    from pulse import audit, export

    catalog = load_catalog(settings.surveys_dir)
    params = {
        k: v
        for k, v in {
            "survey": args.survey,
            "since": args.since,
            "until": args.until,
            "team": args.team,
            "bom": "1" if args.bom else "0",
        }.items()
        if v
    }
    async with db.connected(settings.database_url):
        options = export.parse_options(params, catalog)
        await audit.record(
            "export.responses",
            actor=audit.COMMAND_LINE,
            target="responses",
            details={"filters": params, "to": args.out},
        )
        handle = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: ASYNC230
        try:
            async for chunk in export.csv_chunks(options, catalog, settings.segment_attributes):
                handle.write(chunk)
        finally:
            if handle is not sys.stdout.buffer:
                handle.close()
    return 0


async def _erase(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from pulse import audit, privacy

    async with db.connected(settings.database_url):
        if args.erase_command == "lift":
            removed = await privacy.lift(settings.secret_key, args.value, actor=audit.COMMAND_LINE)
            print(f"Lifted the suppression of {args.value} ({removed} entries): their events are imported again.")
            return 0
        erase = privacy.erase_contact if args.erase_command == "contact" else privacy.erase_employee
        receipt = await erase(args.external_id, settings.secret_key, actor=audit.COMMAND_LINE)
    print(json.dumps(receipt.as_json(), indent=2, ensure_ascii=False))
    return 0


async def _export_contact(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from pulse import audit, privacy

    catalog = load_catalog(settings.surveys_dir)
    async with db.connected(settings.database_url):
        document = await privacy.export_contact(
            args.external_id, catalog, settings.company_name, actor=audit.COMMAND_LINE
        )
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")  # noqa: ASYNC240 (the command's last step)
    return 0


def cmd_surveys_check(settings: Settings, args: argparse.Namespace) -> int:
    catalog = load_catalog(settings.surveys_dir)  # raises CatalogError with every fault
    for survey in catalog:
        trigger = ", ".join(survey.trigger.touchpoint_types) if survey.trigger else "schedule"
        print(f"ok  {survey.source}: {survey.id} ({survey.kind}, {survey.scale_min}-{survey.scale_max}; {trigger})")
    from pulse import risk_config

    weights = risk_config.load(settings.surveys_dir)  # the at-risk weights: CatalogError with every fault too
    print(f"ok  {weights.source}: customers-at-risk weights (listed from {weights.threshold} points)")
    from pulse.translation_commands import print_stale

    stale = print_stale(catalog, settings)
    return 1 if stale and args.strict else 0


def _processes(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {raw!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be between 1 and 256, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from pulse.accounts import ROLES, SCOPES
    from pulse.settings import LOCALES

    parser = argparse.ArgumentParser(prog="pulse", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="Run the web app (and, unless --no-worker, the worker loops).")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    serve.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
    serve.add_argument("--no-worker", action="store_true", help="Serve web requests only; run `pulse worker` apart.")
    serve.add_argument(
        "--processes",
        type=_processes,
        metavar="N",
        help="Web processes on one port (default PULSE_PROCESSES, 1); more than 1 needs PostgreSQL and runs no "
        "worker loops.",
    )
    serve.set_defaults(func=cmd_serve)

    work = commands.add_parser("worker", help="Run only the background loops (PostgreSQL: any number of them).")
    work.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="Create or upgrade the database schema.")
    migrate.set_defaults(func=cmd_migrate)

    make = commands.add_parser("makemigrations", help="(Developers) write a migration for changed models.")
    make.set_defaults(func=cmd_makemigrations)

    demo = commands.add_parser("demo", help="Load a demo organisation with months of answers (once).")
    demo.add_argument("--contacts", type=int, default=600, help="How many customers (default 600).")
    demo.add_argument("--months", type=int, default=12, help="How many months of history (default 12).")
    demo.add_argument("--seed", type=int, default=7, help="Random seed, for the same data again (default 7).")
    demo.add_argument("--quiet", action="store_true", help="No progress bar.")
    demo.add_argument(
        "--surveys-copy",
        metavar="DIR",
        help="Also copy the surveys to DIR with one English text changed after its translation (a stale one).",
    )
    demo.set_defaults(func=cmd_demo)

    users = commands.add_parser("users", help="Manage the people who sign in.")
    users_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = users_commands.add_parser("create", help="Create a user; the password is asked for, or read from stdin.")
    create.add_argument("--email", required=True, help="Sign-in e-mail address.")
    create.add_argument("--role", required=True, choices=ROLES, help="What the user may see and do.")
    create.add_argument("--name", help="Display name.")
    create.add_argument("--locale", default="en", choices=LOCALES, help="Interface language (default en).")
    create.add_argument("--team", action="append", help="A team (slug) a manager is scoped to; repeatable.")
    create.add_argument("--password-stdin", action="store_true", help="Read the password from standard input.")
    create.set_defaults(func=lambda s, a: asyncio.run(_users_create(s, a)))

    keys = commands.add_parser("apikeys", help="Manage API keys for the systems that call Pulse.")
    keys_commands = keys.add_subparsers(dest="apikeys_command", metavar="ACTION", required=True)
    key_create = keys_commands.add_parser("create", help="Create a key and print it once.")
    key_create.add_argument("--name", required=True, help="Who uses the key, e.g. 'helpdesk'.")
    key_create.add_argument("--scope", action="append", required=True, choices=SCOPES, help="A permission; repeatable.")
    keys_commands.add_parser("list", help="List keys (prefix, state, scopes, name).")
    key_revoke = keys_commands.add_parser("revoke", help="Revoke a key by its prefix.")
    key_revoke.add_argument("prefix", help="The key's prefix, as `pulse apikeys list` shows it.")
    keys.set_defaults(func=lambda s, a: asyncio.run(_apikeys(s, a)))

    imports = commands.add_parser("import", help="Import data from CSV files.")
    imports_commands = imports.add_subparsers(dest="import_command", metavar="WHAT", required=True)
    import_touchpoints = imports_commands.add_parser(
        "touchpoints", help="Touchpoint events, one per row (same fields as the API, contact_email style)."
    )
    import_touchpoints.add_argument("file", help="A UTF-8 CSV file with a header row.")
    import_touchpoints.add_argument("--quiet", action="store_true", help="No progress bar.")
    import_touchpoints.set_defaults(func=cmd_import_touchpoints)

    exports = commands.add_parser("export", help="Export data as CSV.")
    export_commands = exports.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    export_responses = export_commands.add_parser("responses", help="Confirmed answers, streamed (formula-safe).")
    export_responses.add_argument("--survey", help="Only this survey.")
    export_responses.add_argument("--since", help="First day (YYYY-MM-DD).")
    export_responses.add_argument("--until", help="Last day (YYYY-MM-DD).")
    export_responses.add_argument("--team", help="Only this team (slug).")
    export_responses.add_argument("--bom", action="store_true", help="Start with a UTF-8 BOM, for Excel.")
    export_responses.add_argument("--out", default="-", help="File to write (default: standard output).")
    export_responses.set_defaults(func=lambda s, a: asyncio.run(_export_responses(s, a)))

    export_contact = export_commands.add_parser(
        "contact", help="Everything Pulse holds about one customer, as JSON (a data-subject access request)."
    )
    export_contact.add_argument("external_id", help="The contact's id in your CRM.")
    export_contact.add_argument("--out", default="-", help="File to write (default: standard output).")
    export_contact.set_defaults(func=lambda s, a: asyncio.run(_export_contact(s, a)))

    erase = commands.add_parser(
        "erase", help="Erase a person (data-subject erasure request) and print the receipt; or lift a suppression."
    )
    erase_commands = erase.add_subparsers(dest="erase_command", metavar="WHO", required=True)
    erase_contact = erase_commands.add_parser(
        "contact", help="A customer: name, e-mail, comments and notes go; scores stay as anonymous counts."
    )
    erase_contact.add_argument("external_id", help="The contact's id in your CRM.")
    erase_employee = erase_commands.add_parser(
        "employee", help="An employee: roster row, invitations and e-mails go; anonymous answers stay."
    )
    erase_employee.add_argument("external_id", help="The employee's id in your HR system.")
    lift = erase_commands.add_parser(
        "lift", help="Let an erased person be imported again (they came back with consent)."
    )
    lift.add_argument("value", help="Their e-mail address or external id.")
    for command in (erase_contact, erase_employee, lift):
        command.set_defaults(func=lambda s, a: asyncio.run(_erase(s, a)))

    rollup = commands.add_parser(
        "rollups", help="Maintain the daily score histograms behind every trend, and the latest answers behind loyalty."
    )
    rollup_commands = rollup.add_subparsers(dest="rollups_command", metavar="ACTION", required=True)
    rebuild = rollup_commands.add_parser(
        "rebuild", help="Recompute them from the answers (all days, or --since; the latest answers always in full)."
    )
    rebuild.add_argument("--since", help="First day to recompute (YYYY-MM-DD); earlier days are kept.")
    rebuild.add_argument("--quiet", action="store_true", help="No progress bar.")
    rebuild.set_defaults(func=lambda s, a: asyncio.run(_rollups_rebuild(s, a)))

    import_employees = imports_commands.add_parser(
        "employees",
        help="The employee roster (external_id, email, name, team, locale, timezone, start_date, "
        "location, role_family, active).",
    )
    import_employees.add_argument("file", help="A UTF-8 CSV file with a header row.")
    import_employees.add_argument("--dry-run", action="store_true", help="Check every row, store nothing.")
    import_employees.add_argument("--quiet", action="store_true", help="No progress bar.")
    import_employees.set_defaults(func=cmd_import_employees)

    retain = commands.add_parser(
        "retention", help="Apply the retention policy now (the worker does it daily); --dry-run only counts."
    )
    retain.add_argument("--dry-run", action="store_true", help="Print what would go, change nothing.")
    retain.set_defaults(func=lambda s, a: asyncio.run(_retention(s, a)))

    send_due = commands.add_parser("send-due", help="Send the e-mails that are due now, then exit (for cron).")
    send_due.set_defaults(func=lambda s, a: asyncio.run(_send_due(s, a)))

    surveys = commands.add_parser("surveys", help="Work with the survey catalog.")
    surveys_commands = surveys.add_subparsers(dest="surveys_command", metavar="ACTION", required=True)
    check = surveys_commands.add_parser("check", help="Validate surveys/*.toml; exit 1 with every fault found.")
    check.add_argument("--strict", action="store_true", help="Exit 1 when a translation is stale, too.")
    check.set_defaults(func=cmd_surveys_check)
    from pulse.translation_commands import add_commands

    add_commands(surveys_commands)
    from pulse.risk_backtest import add_commands as add_insights_commands

    add_insights_commands(commands)
    from pulse.themes_evaluation import add_commands as add_themes_commands

    add_themes_commands(commands)
    _add_debug(parser, top=True)
    return parser


DEBUG_HELP = "When something fails, show the full traceback as well as the sentence."


def _add_debug(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--debug before or after any command (`pulse --debug migrate`, `pulse migrate --debug`)."""
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS, help=DEBUG_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child)


def _fail(sentence: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"Error: {sentence}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        logs.configure(settings.log_level)
        return int(args.func(settings, args) or 0)
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    except CatalogError as error:
        print("The survey catalog does not validate:", file=sys.stderr)
        for message in error.messages:
            print(f"  {message}", file=sys.stderr)
        return 1
    except PulseError as error:
        return _fail(error.message, args.debug)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one sentence that says what to do; the traceback only with --debug
        sentence = storage.explain(error, settings.database_url) if settings else None
        if sentence is None:
            sentence = f"{type(error).__name__}: {error} (run again with --debug to see where)."
        return _fail(sentence, args.debug)


if __name__ == "__main__":
    sys.exit(main())
