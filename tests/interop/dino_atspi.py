"""Press Dino's buttons through AT-SPI: one action per run, for tests/interop/dino.py.

Run by the system Python (Debian's python3-pyatspi), inside Dino's namespace with
its session bus. Actions:
  dump                      print the accessible tree of Dino's windows
  wait NAME [SECONDS]       until a showing widget named NAME exists
  press NAME [SECONDS]      press the first showing widget named NAME
  windows                   the names of Dino's windows on screen
  call [SECONDS]            start an audio call from the open conversation
  mute [SECONDS]            toggle the microphone in the call window
  hangup [SECONDS]          end the call from the call window
"""

from __future__ import annotations

import sys
import time

import pyatspi  # type: ignore[import-not-found]


def dino():
    desktop = pyatspi.Registry.getDesktop(0)
    for app in desktop:
        if app is not None and app.name and "dino" in app.name.lower():
            return app
    return None


def walk(node, depth=0):
    yield node, depth
    try:
        children = list(node)
    except Exception:
        return
    for child in children:
        if child is not None:
            yield from walk(child, depth + 1)


def showing(node) -> bool:
    """On screen: GTK 4 does not set STATE_SHOWING on inner widgets, so the
    widget's extents say it (hidden stack pages have no size)."""
    try:
        ext = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
    except Exception:
        return False
    return ext.width > 0 and ext.height > 0


def dump() -> None:
    app = dino()
    if app is None:
        print("no dino application on the accessibility bus")
        return
    for node, depth in walk(app):
        try:
            actions = node.queryAction()
            names = [actions.getName(i) for i in range(actions.nActions)]
        except NotImplementedError:
            names = []
        except Exception:
            names = []
        try:
            ext = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
            where = f"@{ext.x},{ext.y} {ext.width}x{ext.height}"
        except Exception:
            where = ""
        print("  " * depth + f"[{node.getRoleName()}] {node.name!r} {where}"
              f"{' showing' if showing(node) else ''} {names if names else ''}")


def find(name: str):
    """The lowest on screen of the widgets named ``name``: in a conversation the
    newest entry is at the bottom (old call entries keep their Accept buttons)."""
    app = dino()
    if app is None:
        return None
    best, lowest = None, -1
    for node, _ in walk(app):
        try:
            if node.name == name and showing(node):
                y = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS).y
                if y > lowest:
                    best, lowest = node, y
        except Exception:  # a widget destroyed while we walk (a closed dialog)
            continue
    return best


def until(name: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        node = find(name)
        if node is not None:
            return node
        time.sleep(0.2)
    raise SystemExit(f"no showing widget named {name!r} within {seconds} s")


def until_any(name: str, seconds: float):
    try:
        return until(name, seconds)
    except SystemExit:
        return None


def press(name: str, seconds: float) -> None:
    node = until(name, seconds)
    actions = node.queryAction()
    for i in range(actions.nActions):
        if actions.getName(i) in ("click", "press", "activate"):
            actions.doAction(i)
            return
    actions.doAction(0)


def window(title: str):
    app = dino()
    for node in app or []:
        if node is not None and node.name == title:
            return node
    return None


def call_button(index: int, seconds: float) -> None:
    """The call window's round buttons have no accessible names; from left to
    right: microphone, camera, hang up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        call = window("DinoUiCallWindow")
        if call is not None:
            buttons = []
            for node, _ in walk(call):
                if node.getRoleName() == "push button" and node.name == "GtkButton" \
                        and showing(node):
                    ext = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
                    buttons.append((ext.x, node))
            if len(buttons) >= 3:
                buttons.sort(key=lambda pair: pair[0])
                buttons[index][1].queryAction().doAction(0)
                return
        time.sleep(0.2)
    raise SystemExit("no call window with its buttons")


def start_call(seconds: float) -> None:
    """The conversation's call button (its icon has no name) offers the actions
    call.audio and call.video."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        node = with_action("call.audio")
        if node is not None:
            do(node, "call.audio")
            return
        time.sleep(0.2)
    raise SystemExit("no call button in the conversation's title bar")


def with_action(action: str):
    app = dino()
    for node, _ in walk(app) if app is not None else []:
        try:
            actions = node.queryAction()
            if action in [actions.getName(i) for i in range(actions.nActions)] \
                    and showing(node):
                return node
        except Exception:  # no actions, or a widget destroyed while we walk
            continue
    return None


def do(node, action: str) -> None:
    actions = node.queryAction()
    for i in range(actions.nActions):
        if actions.getName(i) == action:
            actions.doAction(i)
            return


def main(argv: list[str]) -> None:
    action, *args = argv
    if action == "dump":
        dump()
    elif action == "wait":
        until(args[0], float(args[1]) if len(args) > 1 else 20.0)
    elif action == "press":
        press(args[0], float(args[1]) if len(args) > 1 else 20.0)
    elif action == "mute":
        call_button(0, float(args[0]) if args else 10.0)
    elif action == "hangup":
        call_button(-1, float(args[0]) if args else 10.0)
    elif action == "windows":
        for node in dino() or []:
            if node is not None and showing(node):
                print(node.name)
    elif action == "call":
        start_call(float(args[0]) if args else 20.0)
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
