"""Unit tests of course_utils.nn: build_mlp and its parts, from/to_numpy, polyak, make_adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.device import get_device
from course_utils.nn import (ACTIVATIONS, MLPConfig, build_mlp, from_numpy, make_activation,
                             make_adam, orthogonal_init, polyak_update, to_numpy)


def linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


# ------------------------------------------------------------------------------- structure


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
def test_layer_structure(n_layers):
    net = build_mlp(MLPConfig(5, 3, n_layers=n_layers, size=16, activation="relu"), device="cpu")
    assert isinstance(net, nn.Sequential)
    assert len(net) == 2 * n_layers + 2
    # Linear, activation, Linear, activation, ..., output Linear, output activation.
    for i in range(n_layers):
        assert isinstance(net[2 * i], nn.Linear)
        assert isinstance(net[2 * i + 1], nn.ReLU)
    assert isinstance(net[-2], nn.Linear)
    assert isinstance(net[-1], nn.Identity)
    sizes = [(layer.in_features, layer.out_features) for layer in linears(net)]
    hidden = [5] + [16] * n_layers
    assert sizes == list(zip(hidden, hidden[1:] + [3]))


def test_defaults():
    config = MLPConfig(4, 2)
    assert (config.n_layers, config.size, config.activation, config.output_activation) == \
        (2, 64, "tanh", "identity")
    net = build_mlp(config, device="cpu")
    assert [type(m) for m in net] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear,
                                      nn.Identity]


def test_n_layers_zero_is_linear():
    net = build_mlp(MLPConfig(4, 2, n_layers=0), device="cpu")
    assert len(linears(net)) == 1
    x = torch.randn(7, 4)
    layer = net[0]
    torch.testing.assert_close(net(x), x @ layer.weight.T + layer.bias)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_by_name(name):
    net = build_mlp(MLPConfig(3, 2, n_layers=1, size=4, activation=name,
                              output_activation=name), device="cpu")
    assert isinstance(net[1], ACTIVATIONS[name])
    assert isinstance(net[3], ACTIVATIONS[name])


def test_activation_names_are_case_insensitive():
    net = build_mlp(MLPConfig(3, 2, n_layers=1, size=4, activation="ReLU",
                              output_activation="Sigmoid"), device="cpu")
    assert isinstance(net[1], nn.ReLU)
    assert isinstance(net[3], nn.Sigmoid)
    out = net(torch.randn(10, 3))
    assert ((out > 0) & (out < 1)).all()


def test_activation_as_module_instance_is_copied():
    act = nn.LeakyReLU(0.3)
    net = build_mlp(MLPConfig(3, 2, n_layers=2, size=4, activation=act,
                              output_activation=nn.Softplus(beta=2.0)), device="cpu")
    assert isinstance(net[1], nn.LeakyReLU) and net[1].negative_slope == 0.3
    assert isinstance(net[3], nn.LeakyReLU) and net[3].negative_slope == 0.3
    assert net[1] is not act and net[3] is not act and net[1] is not net[3]
    assert isinstance(net[-1], nn.Softplus) and net[-1].beta == 2.0


def test_output_activation_is_applied():
    net = build_mlp(MLPConfig(3, 2, output_activation="tanh"), device="cpu")
    with torch.no_grad():
        for layer in linears(net):
            layer.weight.mul_(100.0)
    out = net(torch.randn(50, 3))
    assert out.abs().max() <= 1.0
    assert out.abs().max() > 0.9


@pytest.mark.parametrize("batch_shape", [(), (1,), (8,), (2, 5)])
def test_output_shape(batch_shape):
    net = build_mlp(MLPConfig(6, 3, n_layers=2, size=8), device="cpu")
    out = net(torch.randn(*batch_shape, 6))
    assert out.shape == (*batch_shape, 3)
    assert out.dtype == torch.float32


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("field", ["activation", "output_activation"])
@pytest.mark.parametrize("bad", ["relux", "", "Tanh()", 3, None, nn.ReLU])
def test_unknown_activation_lists_valid_names(field, bad):
    config = MLPConfig(3, 2, **{field: bad})
    with pytest.raises(ValueError) as info:
        build_mlp(config, device="cpu")
    message = str(info.value)
    assert "activation" in message
    assert repr(bad) in message
    for name in ACTIVATIONS:
        assert repr(name) in message


def test_make_activation():
    assert isinstance(make_activation("gelu"), nn.GELU)
    assert make_activation("relu") is not make_activation("relu")
    prelu = nn.PReLU()
    copy = make_activation(prelu)
    assert isinstance(copy, nn.PReLU) and copy is not prelu
    assert copy.weight is not prelu.weight
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        make_activation("swish")


@pytest.mark.parametrize("field", ["input_size", "output_size", "size"])
@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", None])
def test_invalid_sizes(field, bad):
    kwargs = dict(input_size=4, output_size=2, n_layers=1, size=8)
    kwargs[field] = bad
    with pytest.raises(ValueError, match=f"MLPConfig.{field}"):
        build_mlp(MLPConfig(**kwargs), device="cpu")


@pytest.mark.parametrize("bad", [-1, 1.5, "2", None])
def test_invalid_n_layers(bad):
    with pytest.raises(ValueError, match="MLPConfig.n_layers"):
        build_mlp(MLPConfig(4, 2, n_layers=bad), device="cpu")


def test_numpy_integer_sizes_accepted():
    net = build_mlp(MLPConfig(np.int64(4), np.int32(2), n_layers=np.int64(1), size=np.int64(3)),
                    device="cpu")
    assert net(torch.zeros(1, 4)).shape == (1, 2)


# ------------------------------------------------------------------------------- independence


def assert_share_nothing(a: nn.Module, b: nn.Module) -> None:
    assert not {id(m) for m in a.modules()} & {id(m) for m in b.modules()}
    assert not {id(p) for p in a.parameters()} & {id(p) for p in b.parameters()}
    assert not {p.data_ptr() for p in a.parameters()} & {p.data_ptr() for p in b.parameters()}


def test_two_nets_from_one_config_share_nothing():
    config = MLPConfig(4, 2, n_layers=2, size=8)
    a, b = build_mlp(config, device="cpu"), build_mlp(config, device="cpu")
    assert_share_nothing(a, b)
    # Training one leaves the other untouched.
    before = [p.detach().clone() for p in b.parameters()]
    a(torch.randn(5, 4)).sum().backward()
    torch.optim.SGD(a.parameters(), lr=1.0).step()
    for p, q in zip(b.parameters(), before):
        assert torch.equal(p, q)
        assert p.grad is None


def test_two_nets_with_parametrised_activation_share_nothing():
    act = nn.PReLU()
    config = MLPConfig(4, 2, n_layers=2, size=8, activation=act, output_activation=nn.PReLU())
    a, b = build_mlp(config, device="cpu"), build_mlp(config, device="cpu")
    assert_share_nothing(a, b)
    # 3 Linear (weight + bias) + 3 PReLU weights, none shared with the config's instance.
    assert len(list(a.parameters())) == 9
    assert id(act.weight) not in {id(p) for p in [*a.parameters(), *b.parameters()]}
    prelus = [m for m in a.modules() if isinstance(m, nn.PReLU)]
    assert len({id(m.weight) for m in prelus}) == 3
    with torch.no_grad():
        a[1].weight.fill_(0.9)
    assert b[1].weight.item() == pytest.approx(0.25)
    assert a[3].weight.item() == pytest.approx(0.25)
    assert act.weight.item() == pytest.approx(0.25)


# ------------------------------------------------------------------------------- devices


def test_default_device_is_get_device():
    net = build_mlp(MLPConfig(2, 1))
    assert all(p.device.type == get_device().type for p in net.parameters())


def test_explicit_device():
    net = build_mlp(MLPConfig(2, 1), device=torch.device("cpu"))
    assert all(p.device == torch.device("cpu") for p in net.parameters())


# ------------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float64).reshape(2, 3),
    np.arange(6, dtype=np.int64),
    np.array([True, False]),
    np.float32(1.5),
    2.5,
    [1, 2, 3],
])
def test_from_numpy_is_float32_on_device(array):
    tensor = from_numpy(array, device="cpu")
    assert isinstance(tensor, torch.Tensor)
    assert tensor.dtype == torch.float32
    assert tensor.device == torch.device("cpu")
    np.testing.assert_array_equal(tensor.numpy(), np.asarray(array, dtype=np.float32))
    assert tensor.shape == np.asarray(array).shape


def test_from_numpy_default_device():
    assert from_numpy(np.zeros(3)).device.type == get_device().type


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_to_numpy_dtype_values(dtype):
    tensor = torch.arange(6, dtype=dtype).reshape(3, 2)
    array = to_numpy(tensor)
    assert isinstance(array, np.ndarray)
    assert array.dtype == torch.empty(0, dtype=dtype).numpy().dtype
    np.testing.assert_array_equal(array, [[0, 1], [2, 3], [4, 5]])


def test_to_numpy_detaches():
    tensor = torch.ones(3, requires_grad=True) * 2
    array = to_numpy(tensor)
    np.testing.assert_array_equal(array, [2.0, 2.0, 2.0])


def test_round_trip():
    array = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(to_numpy(from_numpy(array, device="cpu")), array)


def test_to_numpy_returns_a_copy():
    layer = nn.Linear(2, 2)
    weights = to_numpy(layer.weight)
    weights[:] = 0.0
    assert not torch.all(layer.weight == 0)


# ------------------------------------------------------------------------------- polyak_update


def twin_nets(seed_target=0, seed_source=1):
    """Two nets of one architecture with different weights, and a batch-norm buffer each."""
    def net(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))

    target, source = net(seed_target), net(seed_source)
    source.train()(torch.randn(8, 3))  # moves the source's running statistics off their init
    return target, source


def snapshot(module):
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def test_polyak_tau_one_copies_the_source():
    target, source = twin_nets()
    polyak_update(target, source, 1.0)
    for name, value in target.state_dict().items():
        assert torch.equal(value, source.state_dict()[name]), name


def test_polyak_tau_zero_keeps_parameters_and_copies_buffers():
    target, source = twin_nets()
    before = snapshot(target)
    polyak_update(target, source, 0.0)
    for name, parameter in target.named_parameters():
        assert torch.equal(parameter, before[name]), name
    for name, buffer in target.named_buffers():
        assert torch.equal(buffer, source.state_dict()[name]), name
        if buffer.is_floating_point():
            assert not torch.equal(buffer, before[name]), name


def test_polyak_mixes_with_the_exact_formula():
    target, source = twin_nets()
    before = snapshot(target)
    source_values = snapshot(source)
    polyak_update(target, source, 0.3)
    for name, parameter in target.named_parameters():
        expected = 0.3 * source_values[name] + 0.7 * before[name]
        torch.testing.assert_close(parameter.detach(), expected, rtol=0, atol=1e-6)
        if not torch.equal(before[name], source_values[name]):  # batch norm's initial 1s and 0s
            assert not torch.equal(parameter, before[name]), name
    # The source is untouched.
    for name, value in source.state_dict().items():
        assert torch.equal(value, source_values[name]), name


def test_polyak_is_in_place_and_builds_no_graph():
    target, source = twin_nets()
    parameters = list(target.parameters())
    data_pointers = [p.data_ptr() for p in parameters]
    optimizer = torch.optim.SGD(target.parameters(), lr=0.1)  # holds the same tensor objects
    polyak_update(target, source, 0.5)
    assert all(a is b for a, b in zip(target.parameters(), parameters))
    assert [p.data_ptr() for p in target.parameters()] == data_pointers
    assert all(p is q for p, q in zip(optimizer.param_groups[0]["params"], target.parameters()))
    assert all(p.grad is None and p.grad_fn is None for p in target.parameters())
    assert all(p.requires_grad for p in target.parameters())


def test_polyak_repeated_updates_converge_to_the_source():
    target, source = twin_nets()
    for _ in range(200):
        polyak_update(target, source, 0.1)
    for parameter, source_parameter in zip(target.parameters(), source.parameters()):
        torch.testing.assert_close(parameter, source_parameter, rtol=0, atol=1e-6)


@pytest.mark.parametrize("source", [
    nn.Sequential(nn.Linear(3, 4)),                        # fewer parameter tensors
    nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 3)),       # same count, other shapes
    nn.Sequential(nn.Linear(3, 1), nn.Linear(1, 1)),       # shapes that would broadcast
])
def test_polyak_architecture_mismatch(source):
    torch.manual_seed(0)
    target = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = snapshot(target)
    with pytest.raises(ValueError, match="different architectures"):
        polyak_update(target, source, 0.5)
    for name, value in target.state_dict().items():
        assert torch.equal(value, before[name]), name  # nothing written before the error


def test_polyak_buffer_mismatch():
    target = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False))
    source = nn.Sequential(nn.Linear(3, 4), nn.Identity())
    with pytest.raises(ValueError, match="different architectures"):
        polyak_update(target, source, 0.5)


@pytest.mark.parametrize("tau", [-0.1, 1.5, float("nan")])
def test_polyak_tau_out_of_range(tau):
    target, source = twin_nets()
    with pytest.raises(ValueError, match=r"tau must be in \[0, 1\]"):
        polyak_update(target, source, tau)


# ------------------------------------------------------------------------------- make_adam


def test_make_adam_is_adam_with_the_learning_rate_and_trains():
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    optimizer = make_adam(net.parameters(), 0.05, device="cpu")  # a generator of parameters
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in net.parameters()]
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    losses = []
    for _ in range(300):
        loss = ((net(x).squeeze(1) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


def test_make_adam_matches_plain_adam():
    torch.manual_seed(0)
    a = nn.Linear(4, 2)
    b = nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    fused, plain = make_adam(a.parameters(), 0.01, device="cpu"), torch.optim.Adam(b.parameters(),
                                                                                     lr=0.01)
    x = torch.randn(16, 4)
    for _ in range(5):
        for net, optimizer in ((a, fused), (b, plain)):
            optimizer.zero_grad()
            net(x).pow(2).sum().backward()
            optimizer.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_make_adam_default_device_and_other_devices(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    optimizer = make_adam(nn.Linear(2, 2).parameters(), 1e-3)
    assert optimizer.param_groups[0]["lr"] == 1e-3
    # No fused kernel on MPS: plain Adam (the CPU parameters here do not matter for the choice).
    optimizer = make_adam(nn.Linear(2, 2).parameters(), 1e-3, device="mps")
    assert not optimizer.param_groups[0]["fused"]


def test_make_adam_falls_back_where_fused_adam_is_missing(monkeypatch):
    """torch < 2.4 refuses fused=True for CPU parameters with a RuntimeError."""
    original = torch.optim.Adam
    calls = []

    def old_adam(params, lr, fused=None, **kwargs):
        params = list(params)
        calls.append((len(params), fused))
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point "
                               "Tensors of supported devices: ['cuda']")
        return original(params, lr=lr, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", old_adam)
    net = nn.Linear(2, 3)
    optimizer = make_adam(net.parameters(), 0.1, device="cpu")
    assert calls == [(2, True), (2, None)]  # the second try still sees both parameters
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_orthogonal_init_gains_and_zero_biases():
    torch.manual_seed(0)
    mlp = build_mlp(MLPConfig(4, 3, n_layers=2, size=8, activation="tanh"), device="cpu")
    orthogonal_init(mlp, last_gain=0.01)
    linears = [layer for layer in mlp if isinstance(layer, torch.nn.Linear)]
    assert len(linears) == 3 and all(torch.all(layer.bias == 0) for layer in linears)
    hidden = linears[1].weight  # square: orthogonal up to its gain, W Wᵀ = 2 I
    torch.testing.assert_close(hidden @ hidden.T, 2.0 * torch.eye(8), atol=1e-5, rtol=0)
    last = linears[-1].weight  # 3 × 8: orthonormal rows scaled by 0.01
    torch.testing.assert_close(last @ last.T, 1e-4 * torch.eye(3), atol=1e-8, rtol=0)
