"""Unit tests of course_utils.agents.base: the interfaces of the class-based agents."""

from __future__ import annotations

import pytest

from course_utils.agents.base import OffPolicyAgent, Policy


def test_abstract_classes_cannot_be_instantiated():
    with pytest.raises(TypeError):
        Policy()
    with pytest.raises(TypeError):
        OffPolicyAgent()


def test_a_policy_that_implements_get_action_can_be_made():
    class Zero(Policy):
        def get_action(self, observation):
            return 0

    assert Zero().get_action(None) == 0
