"""The convolution epilogue (specialize, tag `conv_epilogue`, declared by the C backend):
act(conv2d(x, w) + b.dimshuffle('x', 0, 'x', 'x')) -> Conv2dBiasAct(x, w, b), for act
identity, relu (maximum with 0), tanh or sigmoid, when nothing else reads the convolution or
the biased sum. The backend then adds the bias and applies the activation to each image's
output while it is in cache."""

from __future__ import annotations

from theanine.graph.basic import Variable
from theanine.rewrite.basic import constant_data, elemwise_owner
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.elemwise import DimShuffle
from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
from theanine.tensor.nnet.conv_ops import Conv2d
from theanine.tensor.type import FLOAT_DTYPES


def _only_client(fgraph, v: Variable, node) -> bool:
    clients = fgraph.clients.get(v, [])
    return len(clients) == 1 and clients[0][0] is node and v not in fgraph.outputs


def _bias(v: Variable):
    """b if v is b.dimshuffle('x', 0, 'x', 'x') for a vector b, else None."""
    node = v.owner
    if node is not None and isinstance(node.op, DimShuffle) and \
            tuple(node.op.new_order) == ("x", 0, "x", "x") and node.inputs[0].ndim == 1:
        return node.inputs[0]
    return None


def _conv_and_bias(fgraph, add):
    """(conv node, bias) if Elemwise node `add` is conv2d(...) + bias, the convolution read
    by nothing else; else None."""
    out = add.outputs[0]
    for conv_side, bias_side in ((0, 1), (1, 0)):
        c, b = add.inputs[conv_side], _bias(add.inputs[bias_side])
        if b is not None and c.owner is not None and type(c.owner.op) is Conv2d and \
                _only_client(fgraph, c, add) and b.dtype == c.dtype == out.dtype:
            return c.owner, b
    return None


def _conv_plus_bias(fgraph, v: Variable, reader):
    """(conv node, bias) if v = conv2d(...) + bias, or a Conv2dBiasAct without activation,
    read only by `reader`; else None."""
    if not _only_client(fgraph, v, reader):
        return None
    if v.owner is not None and isinstance(v.owner.op, Conv2dBiasAct) and \
            v.owner.op.activation == "identity":
        return v.owner, v.owner.inputs[2]
    add = elemwise_owner(v, "add")
    return None if add is None or len(add.inputs) != 2 else _conv_and_bias(fgraph, add)


def _fused(conv_node, b, activation: str, out: Variable):
    x, w = conv_node.inputs[:2]
    new = Conv2dBiasAct(conv_node.op.geometry, activation)(x, w, b)
    return [new] if new.type == out.type else None


@node_rewriter(["add", "maximum", "tanh", "sigmoid"])
def local_conv_epilogue(fgraph, node):
    """conv + bias, and relu / tanh / sigmoid of it (or of a fused conv + bias) -> one op."""
    out = node.outputs[0]
    if out.ndim != 4 or out.dtype not in FLOAT_DTYPES:
        return None
    name = node.op.scalar_op.name
    if name == "add":
        found = _conv_and_bias(fgraph, node) if len(node.inputs) == 2 else None
        return None if found is None else _fused(*found, "identity", out)
    if name == "maximum":
        for k in (0, 1):
            zero = constant_data(node.inputs[1 - k])
            if zero is not None and zero.size and not zero.any():
                found = _conv_plus_bias(fgraph, node.inputs[k], node)
                if found is not None:
                    return _fused(*found, "relu", out)
        return None
    found = _conv_plus_bias(fgraph, node.inputs[0], node)
    return None if found is None else _fused(*found, name, out)


register_rewrite(local_conv_epilogue, "specialize", "conv_epilogue")
