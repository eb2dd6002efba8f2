"""Exercise checks, one module per notebook; ``common`` holds what they share."""

from course_utils.checks.actor_critic import (
    check_a2c_update,
    check_collect_rollout,
    check_gae,
    check_n_step_return,
)
from course_utils.checks.bandits import (
    check_epsilon_greedy,
    check_gradient_bandit_update,
    check_incremental_update,
    check_ucb_select,
)
from course_utils.checks.continuous_control import (
    check_ddpg_update,
    check_sac_update,
    check_tanh_log_prob_correction,
    check_td3_target,
    check_td3_update,
)
from course_utils.checks.dqn import (
    check_double_dqn_target,
    check_dqn_update,
    check_epsilon_greedy_actions,
    check_polyak_update,
)
from course_utils.checks.dynamic_programming import (
    check_greedy_policy,
    check_policy_evaluation,
    check_value_iteration,
)
from course_utils.checks.her import check_bitflip_reward, check_store_episode
from course_utils.checks.monte_carlo_td import (
    check_double_q_update,
    check_expected_sarsa_update,
    check_first_visit_mc_prediction,
    check_q_learning_update,
    check_sarsa_update,
    check_td0_update,
)
from course_utils.checks.policy_gradient import (
    check_discounted_reward_to_go,
    check_reinforce_update,
    check_reward_to_go,
    check_softmax_score,
)
from course_utils.checks.ppo import (
    check_approx_kl,
    check_clipped_surrogate,
    check_gaussian_log_prob,
    check_ppo_update,
)
from course_utils.checks.pusht import check_bc_update, check_coverage
from course_utils.checks.rlft import check_rlft_update

__all__ = [
    "check_a2c_update",
    "check_approx_kl",
    "check_bc_update",
    "check_bitflip_reward",
    "check_clipped_surrogate",
    "check_collect_rollout",
    "check_coverage",
    "check_ddpg_update",
    "check_discounted_reward_to_go",
    "check_double_dqn_target",
    "check_double_q_update",
    "check_dqn_update",
    "check_epsilon_greedy",
    "check_epsilon_greedy_actions",
    "check_expected_sarsa_update",
    "check_first_visit_mc_prediction",
    "check_gae",
    "check_gaussian_log_prob",
    "check_gradient_bandit_update",
    "check_greedy_policy",
    "check_incremental_update",
    "check_n_step_return",
    "check_policy_evaluation",
    "check_polyak_update",
    "check_ppo_update",
    "check_q_learning_update",
    "check_reinforce_update",
    "check_reward_to_go",
    "check_rlft_update",
    "check_sac_update",
    "check_sarsa_update",
    "check_store_episode",
    "check_softmax_score",
    "check_tanh_log_prob_correction",
    "check_td0_update",
    "check_td3_target",
    "check_td3_update",
    "check_ucb_select",
    "check_value_iteration",
]
