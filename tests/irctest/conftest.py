"""A conftest for running irctest under Debian 12's pytest (7.2).

irctest's own conftest uses a hook-wrapper form that pytest 7.2 does not know. This one
does the same jobs in 7.2's terms: load the controller named by --controller, keep only
the server tests, and turn a skip for an optional behaviour that the controller declares
into a failure. scripts/irctest.sh puts it in place of irctest's own.
"""

import importlib

import pytest

pytest.register_assert_rewrite("irctest.cases")

from irctest.basecontrollers import BaseServerController  # noqa: E402
from irctest.cases import BaseServerTestCase, _IrcTestCase  # noqa: E402
from irctest.runner import OptionalBehaviorNotSupported  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--controller", help="module of the controller of the server under test")
    parser.addoption("--services-controller", help="not used with Warren")
    parser.addoption("--openssl-bin", type=str, default="openssl")


def pytest_configure(config):
    name = config.getoption("controller")
    if name is None:
        pytest.exit("give --controller", 1)
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        pytest.exit("cannot import %s: %s" % (name, e), 1)
    cls = module.get_irctest_controller_class()
    if not issubclass(cls, BaseServerController):
        pytest.exit("%s is not a server controller" % name, 1)
    _IrcTestCase.controllerClass = cls
    _IrcTestCase.controllerClass.openssl_bin = config.getoption("openssl_bin")
    _IrcTestCase.show_io = True


def pytest_collection_modifyitems(session, config, items):
    def is_server_test(item):
        cls = getattr(item.parent, "cls", None)
        return cls is not None and issubclass(cls, BaseServerTestCase)

    items[:] = [item for item in items if is_server_test(item)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    excinfo = outcome.excinfo
    if excinfo is None or not isinstance(excinfo[1], OptionalBehaviorNotSupported):
        return
    behavior = excinfo[1].args[0]
    controller = getattr(item.instance, "controller", None)
    if controller is not None and behavior in controller.optional_behaviors:
        # pluggy 1.0 (Debian 12) lets a wrapper's own exception replace the outcome.
        raise Exception(
            "%s declares behaviour %s but does not support it"
            % (controller.software_name, behavior)
        )
