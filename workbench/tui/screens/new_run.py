"""New-run screen: a form over RunConfig, validated as you type by `build_config` (CLI errors)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_args

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from ...config import ConfigError, LLMConfig, RunConfig, build_config

# the choices are the config's own (its Literal fields): one source of truth
FAMILIES = get_args(RunConfig.model_fields["family"].annotation)
METHODS = get_args(RunConfig.model_fields["method"].annotation)
PROPOSERS = get_args(LLMConfig.model_fields["proposer"].annotation)
BUDGET_SECTION = {"es": "es", "llm": "llm"}  # where `generations` lives per method


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _number(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return yaml.safe_load(text)  # same parsing as `--set key=value`
    except yaml.YAMLError:
        return text


class NewRunScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("ctrl+s", "start", "Start"),
                Binding("ctrl+o", "load", "Load config")]

    def __init__(self, base: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.base = base or {}
        self.config: RunConfig | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Input(placeholder="configs/quickstart.yaml", id="config_file")
                yield Button("Load", id="load")
            with Grid(id="fields"):
                yield Label("name")
                yield Input(self.base.get("name", RunConfig.model_fields["name"].default), id="name")
                yield Label("family")
                yield Select([(f, f) for f in FAMILIES], value=self.base.get("family", RunConfig.model_fields["family"].default),
                             allow_blank=False, id="family")
                yield Label("method")
                yield Select([(m, m) for m in METHODS], value=self.base.get("method", RunConfig.model_fields["method"].default),
                             allow_blank=False, id="method")
                yield Label("meta-train envs")
                yield Input(",".join(self.base.get("envs", ["cartpole"])), id="envs")
                yield Label("meta-test envs")
                yield Input(",".join(self.base.get("test_envs", [])), id="test_envs")
                yield Label("proposer")
                yield Select([(p, p) for p in PROPOSERS],
                             value=self.base.get("llm", {}).get("proposer", LLMConfig.model_fields["proposer"].default),
                             allow_blank=False, id="proposer")
                yield Label("model")
                yield Input(self.base.get("llm", {}).get("model") or "", placeholder="none (offline)",
                            id="model")
                yield Label("generations")
                yield Input("", placeholder="default", id="generations")
                yield Label("max cost $")
                yield Input("", placeholder="no limit", id="max_cost_usd")
                yield Label("timesteps")
                yield Input(str(self.base.get("timesteps") or ""), placeholder="env default",
                            id="timesteps")
                yield Label("seeds")
                yield Input(str(self.base.get("seeds", "")), placeholder="default", id="seeds")
            yield Static(id="errors")
            with Horizontal(classes="row"):
                yield Button("Start run", variant="success", id="start")
                yield Button("Back", id="back")
        yield Footer()

    def on_mount(self) -> None:
        self.validate()

    # -- the form as a config dict ------------------------------------------------------------
    def form_data(self) -> dict[str, Any]:
        data = copy.deepcopy(self.base)
        val = lambda wid: self.query_one(f"#{wid}", Input).value  # noqa: E731
        sel = lambda wid: self.query_one(f"#{wid}", Select).value  # noqa: E731
        data["name"] = val("name")
        data["family"] = sel("family")
        data["method"] = sel("method")
        data["envs"] = _csv(val("envs"))
        data["test_envs"] = _csv(val("test_envs"))
        llm = data.setdefault("llm", {})
        llm["proposer"] = sel("proposer")
        llm["model"] = val("model").strip() or None
        for key, section in (("generations", BUDGET_SECTION.get(data["method"])),
                             ("max_cost_usd", "llm"), ("timesteps", None), ("seeds", None)):
            v = _number(val(key))
            if v is None or (key == "generations" and section is None):
                continue
            if section:
                data.setdefault(section, {})[key] = v
            else:
                data[key] = v
        data["workspace"] = str(self.app.workspace)
        return data

    def validate(self) -> RunConfig | None:
        errors = self.query_one("#errors", Static)
        try:
            self.config = build_config(self.form_data())
        except ConfigError as exc:
            self.config = None
            errors.update(f"[red]{exc}[/]")
            errors.add_class("bad")
            return None
        errors.update("[green]config is valid[/] — ctrl+s to start")
        errors.remove_class("bad")
        return self.config

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "config_file":
            self.validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.validate()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"load": self.action_load, "start": self.action_start,
         "back": self.action_back}[event.button.id]()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "config_file":
            self.action_load()

    # -- actions -----------------------------------------------------------------------------
    def action_load(self) -> None:
        box = self.query_one("#config_file", Input)
        errors = self.query_one("#errors", Static)
        if not box.value.strip():  # ctrl+o on an empty box: type the path there, then enter
            box.focus()
            errors.update("type the path of a config file, then enter to load it")
            return
        path = Path(box.value.strip())
        try:
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
        except (OSError, yaml.YAMLError, ConfigError) as exc:
            errors.update(f"[red]cannot load {path}: {exc}[/]")
            return
        self.app.switch_screen(NewRunScreen(base=data))

    def action_start(self) -> None:
        config = self.validate()
        if config is None:
            self.notify("fix the errors shown first", severity="error")
            return
        self.app.start_run(config)

    def action_back(self) -> None:
        self.app.pop_screen()
