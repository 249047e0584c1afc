"""Safe by default and discoverable like k9s: nothing changes the cluster without a question,
k9s habits (/ : ? j k Esc) never fire an action, and the plan is the plan for the state shown."""

from __future__ import annotations

import io

from rich.console import Console
from textual import events
from textual.widgets import Button, Checkbox, DataTable, Input, Static

from fakes.keycloak import FakeKeycloak
from fakes.kube_api import FakeKubeAPI
from fakes.tls import shared_pki
from thinkube_devpi.config import ConfigError, Settings
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.operations import OPERATIONS
from thinkube_devpi.installer.phases import PHASES
from thinkube_devpi.installer.runner import Runner
from thinkube_devpi.tui.screens.base import describe
from thinkube_devpi.tui.screens.confirm import ConfirmRollback, ConfirmRun

from .conftest import SIZE, Seen, cluster_of, header_of, log_of, phases_of, settle, until
from .test_pilot import NS, apply_directly


def deletes(fake: FakeKubeAPI) -> list[str]:
    return [r.path for r in fake.writes() if r.method == "DELETE"]


def burst(app, keys: list[str]) -> None:
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


def section_of(listing: str, what: str) -> str:
    """Under which heading ("deletes:" or "keeps:") the line naming ``what`` is listed."""
    heading = ""
    for line in listing.splitlines():
        if line.strip() in ("deletes:", "keeps:"):
            heading = line.strip()
        elif what in line:
            return heading
    return "absent"


def plan_actions(app, phase: str) -> dict[str, str]:
    plan = phases_of(app).plans.get(phase)
    return {str(i.ref): i.action for i in plan.items} if plan else {}


async def retry_ticking(app, pilot, seen, option: str) -> None:
    """t (retry the failed phases), tick ``option`` in the question, y; until that run ends."""
    runs = len(seen.runs_ended())
    await pilot.press("t")
    await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
    await pilot.click(f"#option-{option}")
    await pilot.press("y")
    await until(pilot, lambda: len(seen.runs_ended()) == runs + 1, what="the run")
    await settle(app, pilot)


async def connected(app, pilot) -> None:
    await until(pilot, lambda: header_of(app).connection == "connected", what="connection")
    await settle(app, pilot)


async def test_run_on_the_rollback_row_asks_and_lists_every_phase_nothing_deleted_before(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace", "storage")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        phases_of(app).select("rollback")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="the question")
        assert deletes(cluster) == []
        listing = str(app.screen.query_one("#rollback-objects").render())
        assert section_of(listing, "ServiceAccount devpi/devpi") == "deletes:"
        # the PVC is kept: listed with the keeps, never with the deletes
        assert section_of(listing, "PersistentVolumeClaim devpi/devpi-data-pvc") == "keeps:"
        assert "30 redis: skipped (never applied)" in listing
        # asking to delete the package data moves it to the deletes
        await pilot.click("#delete-data")
        moved = str(app.screen.query_one("#rollback-objects").render())
        assert section_of(moved, "PersistentVolumeClaim devpi/devpi-data-pvc") == "deletes:"
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmRollback)
        assert deletes(cluster) == []
        assert cluster.get("v1", "Namespace", NS) is not None


async def test_row_88_runs_the_test_after_asking_and_has_nothing_to_roll_back(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, notifications=True, message_hook=seen) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        phases_of(app).select("test")
        await pilot.press("b")
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmRollback)
        assert any("88 test leaves nothing behind" in note for note in seen.notes())
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        listing = str(app.screen.query_one("#run-listing").render())
        assert "88 test (unknown):" in listing and "writes nothing to the cluster" in listing
        await pilot.press("n")
        await settle(app, pilot)
        assert not seen.started() and cluster.writes() == []


async def test_the_palette_asks_the_same_questions(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        from thinkube_devpi.tui.palette import DevpiCommands

        titles = [title for title, _, _ in DevpiCommands(app.screen)._entries()]
        assert "Run phase 88 test" in titles and "Roll back the whole install (phase 89)" in titles
        # 89 is never "run", and 88 leaves nothing behind to roll back
        assert "Run phase 89 rollback" not in titles and "Roll back phase 88 test" not in titles
        await app.run_command("run_phase_named('rollback')", "phases")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="rollback")
        await pilot.press("n")
        await settle(app, pilot)
        await app.run_command("rollback_phase_named('namespace')", "phases")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="rollback")
        await pilot.press("escape")
        await app.run_command("run_phase_named('redis')", "phases")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="run")
        await pilot.press("n")
        await settle(app, pilot)
        assert cluster.writes() == []


async def pick(pilot, app, title: str) -> None:
    """Type ``title`` into the open palette and choose it once it is the highlighted hit."""
    from textual.command import CommandList

    await pilot.press(*title)

    def highlighted() -> str:
        option = app.screen.query_one(CommandList).highlighted_option
        prompt = getattr(option, "prompt", "")  # the title, then the help on a second line
        return str(getattr(prompt, "plain", prompt)).split("\n")[0]

    await until(pilot, lambda: highlighted() == title, what=f"{title!r} in the palette")
    await pilot.press("enter")


async def test_the_palette_opened_on_the_cluster_view_rolls_back_only_after_asking(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        await pilot.press("2", "ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette",
                    what="the palette")
        await pick(pilot, app, "Roll back phase 10 namespace")
        # the phases view's command, run from the cluster view: it asks, listing the objects
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="the question")
        assert app.view == "cluster"
        assert "Namespace devpi" in str(app.screen.query_one("#rollback-objects").render())
        await pilot.press("escape")
        await settle(app, pilot)
        assert not seen.started() and cluster.writes() == []
        # the palette lists the commands of the view shown, not those of the others
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette",
                    what="the palette")
        await pick(pilot, app, "Toggle faults only")
        await settle(app, pilot)
        assert cluster_of(app).faults_only


async def test_run_asks_first_and_lists_what_it_creates(
    cluster, kubeconfig, make_app, settings, tmp_path, controllers
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        phases_of(app).select("redis")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        listing = str(app.screen.query_one("#run-listing").render())
        assert "create  Deployment devpi/ephemeral-redis" in listing
        assert cluster.writes() == []
        await pilot.press("y")
        await until(pilot, lambda: seen.runs_ended(), timeout=20, what="the run")
        assert seen.started() == ["redis"]
        assert cluster.get("apps/v1", "Deployment", "ephemeral-redis", NS) is not None
        assert deletes(cluster) == []


async def test_typing_slash_redis_filters_and_never_runs_a_phase(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        burst(app, ["slash", *"redis"])
        await until(pilot, lambda: phases_of(app).filter_text == "redis", what="the filter")
        await settle(app, pilot)
        table = phases_of(app).query_one("#phase-table", DataTable)
        assert [str(k.value) for k in table.rows] == ["redis"]
        assert not isinstance(app.screen, ConfirmRun | ConfirmRollback)
        assert not seen.started() and cluster.writes() == []
        await pilot.press("enter")  # keeps the filter, back to the list
        assert app.focused is table and phases_of(app).filter_text == "redis"
        await pilot.press("escape")  # Esc clears it
        assert phases_of(app).filter_text == "" and table.row_count == len(PHASES) + len(
            OPERATIONS
        )


async def test_colon_jumps_to_a_view_or_a_kind_and_esc_goes_back(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("colon", *"pods", "enter")
        await until(pilot, lambda: app.view == "cluster", what="the cluster view")
        await pilot.pause()
        assert cluster_of(app).kind == "Pod" and app.focused.id == "table-Pod"
        await pilot.press("colon", *"pvc", "enter")
        await pilot.pause()
        assert cluster_of(app).kind == "PersistentVolumeClaim"
        await pilot.press("escape")
        await until(pilot, lambda: app.view == "phases", what="back")
        await pilot.press("colon", *"config", "enter")
        await until(pilot, lambda: app.view == "config", what="config")
        await pilot.press("colon", *"nonsense", "enter")
        await pilot.pause()
        assert app.view == "config"


async def test_j_and_k_move_and_question_mark_lists_every_key_of_the_view(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(app, pilot)
        table = phases_of(app).query_one("#phase-table", DataTable)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")
        keys = {key for key, _ in app.screen.rows}
        assert {"?", "/", ":", "r", "a", "t", "b", "j", "k", "esc", "1", "2", "3", "q"} <= keys
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ != "HelpScreen"
        await pilot.press("2", "question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")
        keys = {key for key, _ in app.screen.rows}
        assert {"f", "l", "e", "/", ":"} <= keys and not {"r", "b", "a"} & keys


async def test_the_plan_loads_after_connecting_while_the_cluster_changes(
    cluster, kubeconfig, make_app
):
    """Five launches, each with watches delivering: every plan loads without ctrl+r."""
    for _ in range(5):
        await launch_and_wait_for_every_plan(make_app(kubeconfig=kubeconfig))


async def launch_and_wait_for_every_plan(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: header_of(app).connection == "connected", what="connection")
        await until(
            pilot,
            lambda: all(phases_of(app).plans.get(p.name) for p in app.state.phase_list),
            timeout=20,
            what="every plan",
        )


async def test_the_plan_follows_a_run_and_a_rollback(
    cluster, kubeconfig, make_app, settings, tmp_path, controllers
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        await until(pilot, lambda: plan_actions(app, "redis"), what="the plan")
        assert set(plan_actions(app, "redis").values()) == {"create"}
        phases_of(app).select("redis")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="run")
        await pilot.press("y")
        await until(
            pilot,
            lambda: len(seen.runs_ended()) == 1
            and set(plan_actions(app, "redis").values()) == {"unchanged"},
            timeout=20,
            what="the plan after the run",
        )
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="rollback")
        await pilot.click("#yes")
        await until(
            pilot,
            lambda: len(seen.runs_ended()) == 2
            and set(plan_actions(app, "redis").values()) == {"create"},
            timeout=20,
            what="the plan after the rollback",
        )


async def test_the_rollback_dialog_has_no_yes_by_default(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        phases_of(app).select("namespace")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="rollback")
        assert app.focused is app.screen.query_one("#no", Button)
        await pilot.press("enter")  # Enter answers the focused button: Cancel
        await settle(app, pilot)
        assert cluster.writes() == []


async def test_run_all_follows_the_running_phase_and_its_wait_shows_time_against_deadline(
    cluster, kubeconfig, make_app, settings, tmp_path, monkeypatch
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    # Run all checks every phase's settings (keys, S3, Gateway) before the first write, which
    # test_pilot's test_run_all_without_a_repository_is_refused_before_anything_is_written
    # covers; this test is about following the run, so those checks pass here.
    monkeypatch.setattr(Runner, "_precheck", lambda self, phases: True)
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        app.state.ctx.wait_timeout = 20
        phases_of(app).select("namespace")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        await pilot.press("y")
        # namespace is healthy and skipped; storage waits for a PVC nobody binds
        await until(pilot, lambda: seen.started()[-1:] == ["storage"], what="storage")
        await until(pilot, lambda: phases_of(app).waiting is not None, what="the wait")
        assert phases_of(app).selected == "storage"  # the cursor followed
        await pilot.pause(1.2)
        line = phases_of(app).wait_line().plain
        assert "waiting for PersistentVolumeClaim devpi/devpi-data-pvc" in line
        assert "s of 20 s" in line
        shown = str(phases_of(app).query_one("#phase-log-text").render())
        assert "s of 20 s" in shown
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmQuit", what="quit")
        assert app.screen.running == "20 storage"  # the phase actually running, by its label
        await pilot.press("n")


async def test_a_click_on_the_key_bar_presses_the_key_and_a_disabled_key_only_rings(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    """The key bar is one line drawn by one widget; a click on " r Run " is the key r: it asks
    first, like the key. In plan mode the same click writes nothing and opens nothing."""
    from thinkube_devpi.tui.widgets.keybar import KeyBar

    def offset_of(bar: KeyBar, key: str) -> tuple[int, int]:
        start, end, *_ = next(span for span in bar._spans if span[2] == key)
        return ((start + end) // 2, 0)

    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        bar = app.screen.query_one(KeyBar)
        assert " r Run " in str(bar.render()) and "▏^p palette" in str(bar.render())
        await pilot.click(KeyBar, offset=offset_of(bar, "r"))
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        await pilot.press("n")
        await settle(app, pilot)
        assert cluster.writes() == []

    app = make_app(plan=True)
    bells: list[None] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.bell = lambda: bells.append(None)  # type: ignore[method-assign]
        bar = app.screen.query_one(KeyBar)
        run = next(k for k in bar.shown_keys() if k[0] == "r")
        assert run[3] is False  # disabled in plan mode, and drawn dim
        await pilot.click(KeyBar, offset=offset_of(bar, "r"))
        await settle(app, pilot)
        assert bells and not isinstance(app.screen, ConfirmRun)


async def test_the_tui_says_where_in_it_to_set_what_a_run_needs_never_a_command(
    cluster, kubeconfig, make_app, tmp_path
):
    app = make_app(settings=Settings().validate(), kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        cluster.clear_log()
        phases_of(app).select("namespace")
        for key in ("r", "a"):
            await pilot.press(key)
            await settle(app, pilot)
            assert not isinstance(app.screen, ConfirmRun)  # no question that can only fail
        refusals = [n for n in seen.notes() if "placeholder 'thinkube.local'" in n]
        assert len(refusals) == 2
        assert "Config view (3)" in refusals[0] and "tk-devpi" not in refusals[0]
        assert cluster.writes() == []

        # the admin does what it says: the domain in the Config view, saved; now it asks
        await pilot.press("3")
        await until(pilot, lambda: bool(app.screen.query("#input-domain")), what="fields")
        app.screen.query_one("#input-domain", Input).value = "example.org"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("1")
        await settle(app, pilot)
        phases_of(app).select("namespace")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        await pilot.press("n")
        assert cluster.writes() == []

        # a setting or a secret a phase needs, missing: the log says where in the TUI to set it
        for phase, where in (
            # what the command line's hint says beyond how to set it stays
            ("build", "Set deploy_repo in the Config view (3), save it (ctrl+s) and run again. "
                      "An SSH URL such as git@github.com:org/devpi-deployment.git."),
            ("keycloak", "Type KEYCLOAK_ADMIN_PASSWORD in the Config view (3), under its secrets"),
            ("oauth2-proxy", "first."),  # the CLI's "(`tk-devpi install apply --phase ...`)" goes
        ):
            phases_of(app).select(phase)
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
            await pilot.press("y")
            await until(pilot, lambda p=phase: p in seen.failed(), what=f"{phase} to fail")
            await settle(app, pilot)
            log = log_of(app, phase)
            assert where in log and "tk-devpi" not in log, log
        assert cluster.writes() == []

    # a bad setting met during a run is told the same way: where to fix it, not a command
    bad = ConfigError("domain", "x_y", "a DNS name", hint="Set it with `tk-devpi config init`.")
    message, hint = describe(bad)
    assert message == "domain: 'x_y' is not allowed: a DNS name"
    assert hint == "Set domain in the Config view (3), save it (ctrl+s) and run again."


async def test_an_object_made_by_someone_else_is_taken_over_only_when_ticked_in_the_question(
    cluster, kubeconfig, make_app, settings
):
    # the admin made the namespace by hand before installing
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        assert plan_actions(app, "namespace")[f"Namespace {NS}"] == "refuse"
        phases_of(app).select("namespace")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        offer = app.screen.query_one("#option-adopt", Checkbox)
        assert offer.value is False and "Take over objects others made" in str(offer.label)
        await pilot.press("y")  # not ticked: refused, the namespace untouched
        await until(pilot, lambda: "namespace" in seen.failed(), what="the refusal")
        await settle(app, pilot)
        labels = cluster.get("v1", "Namespace", NS)["metadata"].get("labels") or {}
        assert "thinkube-devpi/adopted" not in labels
        log = log_of(app, "namespace")
        assert 'tick "Take over objects others made (rollback keeps them)"' in log
        assert "--adopt" not in log

        await retry_ticking(app, pilot, seen, "adopt")  # as the log says: again, ticked
        assert len(seen.runs_ended()) == 2
        assert "namespace" not in seen.failed()
        labels = cluster.get("v1", "Namespace", NS)["metadata"]["labels"]
        assert labels["thinkube-devpi/adopted"] == "true"
        assert app.state.ctx.adopt is False  # for that run only


async def test_on_80x24_the_questions_keep_their_answers_on_screen(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    # every phase listed: the rollback of the whole install is the longest question there is
    apply_directly(cluster, settings, tmp_path, "namespace", "storage")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(app, pilot)
        phases_of(app).select("rollback")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="the question")
        await pilot.click("#delete-data")
        await pilot.pause()
        # inside the dialog's border and padding, not under its bottom edge
        dialog = app.screen.query_one("#dialog").scrollable_content_region
        for answer in ("#confirm-namespace", "#yes", "#no"):
            assert dialog.contains_region(app.screen.query_one(answer).region), answer
        await pilot.press("escape")
        await settle(app, pilot)

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        dialog = app.screen.query_one("#dialog").scrollable_content_region
        for answer in ("#yes", "#no"):
            assert dialog.contains_region(app.screen.query_one(answer).region), answer
        await pilot.press("n")


async def test_a_field_another_manager_took_is_taken_back_only_when_ticked(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    # someone edits the build executor's Role with their own server-side apply
    role = ("rbac.authorization.k8s.io/v1", "Role", "devpi-build-executor", "argo")
    theirs = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    other = Kube(cluster.api_client(), cache_dir=tmp_path / "other-cache")
    other.resource(*role[:2]).server_side_apply(
        body={"apiVersion": role[0], "kind": role[1],
              "metadata": {"name": role[2], "namespace": role[3]}, "rules": theirs},
        name=role[2], namespace=role[3], field_manager="kubectl", force_conflicts=True,
    )
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await connected(app, pilot)
        phases_of(app).select("namespace")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), what="the question")
        assert not app.screen.query("#option-force_conflicts")  # nothing calls for it yet
        await pilot.press("y")
        await until(pilot, lambda: "namespace" in seen.failed(), what="the conflict")
        await settle(app, pilot)
        log = log_of(app, "namespace")
        assert "kubectl" in log  # the API's word: who owns the field
        assert 'tick "Take over fields another field manager owns"' in log, log
        assert "--force-conflicts" not in log
        assert cluster.get(*role)["rules"] == theirs

        await retry_ticking(app, pilot, seen, "force_conflicts")  # as the log says: again, ticked
        assert len(seen.runs_ended()) == 2
        assert "namespace" not in seen.failed()
        assert cluster.get(*role)["rules"] != theirs
        assert app.state.ctx.force_conflicts is False  # for that run only


async def test_preflight_in_the_config_view_says_what_to_do_in_tui_words(make_app, tmp_path):
    # Keycloak answers over TLS with a certificate this machine does not trust: the check's
    # hint for the command line names `tk-devpi config init --keycloak-ca-file PATH`
    with FakeKeycloak(tls=shared_pki()) as kc:
        settings = Settings(domain="example.com", keycloak_url=kc.url).validate()
        app = make_app(settings=settings, plan=True)

        def shown() -> str:
            out = Console(width=110, file=io.StringIO(), record=True)
            out.print(app.screen.query_one("#preflight", Static).content)
            return out.export_text()

        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await until(pilot, lambda: bool(app.screen.query("#preflight")), what="the view")
            await pilot.press("p")
            await until(pilot, lambda: "Keycloak issuer" in shown(), timeout=20, what="checks")
            assert "not trusted here" in shown(), shown()
            assert "Set keycloak_ca_file to the CA that signed it." in shown(), shown()
            assert "tk-devpi" not in shown()
