"""The zoo's ``nn.Module`` classes (imported lazily by :mod:`hetsched.graph.zoo`)."""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GPT", "MLP", "Decode", "Mamba", "ResNet", "UNet"]


# ----------------------------------------------------------------------------- GPT


class _Head(nn.Module):
    """One attention head with its own projections: q@k^T, causal mask, softmax, @v."""

    def __init__(self, d: int, hd: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, hd), nn.Linear(d, hd), nn.Linear(d, hd)
        self.scale = 1.0 / math.sqrt(hd)

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        att = (self.q(x) @ self.k(x).transpose(-2, -1)) * self.scale
        att = att.masked_fill(blocked, float("-inf")).softmax(dim=-1)
        return att @ self.v(x)


class _Attention(nn.Module):
    def __init__(self, d: int, heads: int, seq: int, split: bool) -> None:
        super().__init__()
        self.heads, self.split = heads, split
        if split:
            self.head = nn.ModuleList(_Head(d, d // heads) for _ in range(heads))
            blocked = ~torch.tril(torch.ones(seq, seq, dtype=torch.bool))
            self.register_buffer("blocked", blocked, persistent=False)
        else:
            self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    blocked: Tensor

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        if self.split:
            blocked = self.blocked[:t, :t]
            y = torch.cat([h(x, blocked) for h in self.head], dim=-1)
        else:
            q, k, v = self.qkv(x).split(d, dim=-1)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class _GPTBlock(nn.Module):
    def __init__(self, d: int, heads: int, seq: int, split: bool) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = _Attention(d, heads, seq, split)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, layers: int, d: int, heads: int, seq: int, vocab: int, split: bool) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(_GPTBlock(d, heads, seq, split) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, idx: Tensor) -> Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.ln_f(x))


# ----------------------------------------------------------------------------- Decode


class _CachedHead(nn.Module):
    """One head of a decode step: ``q(x)`` against cached keys and values, softmax, @v.

    Parameters are named as in ``_Head``, so a split-heads :class:`GPT` loads its weights.
    """

    def __init__(self, d: int, hd: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, hd), nn.Linear(d, hd), nn.Linear(d, hd)
        self.scale = 1.0 / math.sqrt(hd)

    def forward(self, x: Tensor, k: Tensor, v: Tensor) -> Tensor:
        att = (self.q(x) @ k.transpose(-2, -1)) * self.scale
        return att.softmax(dim=-1) @ v


class _CachedAttention(nn.Module):
    """``_Attention`` for one new token: its k/v are appended to the layer's cache
    ``(batch, heads, L, d / heads)`` and it attends to all ``L + 1`` positions (no mask:
    every cached position precedes it). Returns the output and the new cache."""

    def __init__(self, d: int, heads: int, split: bool) -> None:
        super().__init__()
        self.heads, self.split = heads, split
        if split:
            self.head = nn.ModuleList(_CachedHead(d, d // heads) for _ in range(heads))
        else:
            self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: Tensor, k_cache: Tensor, v_cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        heads = cast("list[_CachedHead]", list(self.head) if self.split else [])
        if self.split:
            k_new = torch.stack([h.k(x) for h in heads], dim=1)  # (batch, heads, t, d / heads)
            v_new = torch.stack([h.v(x) for h in heads], dim=1)
        else:
            q, k_new, v_new = self.qkv(x).split(d, dim=-1)
            q, k_new, v_new = (
                z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k_new, v_new)
            )
        k, v = torch.cat([k_cache, k_new], dim=2), torch.cat([v_cache, v_new], dim=2)
        if self.split:
            y = torch.cat([h(x, k[:, i], v[:, i]) for i, h in enumerate(heads)], dim=-1)
        else:
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y), k, v


class _DecodeBlock(nn.Module):
    def __init__(self, d: int, heads: int, split: bool) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = _CachedAttention(d, heads, split)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor, k_cache: Tensor, v_cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, k, v = self.attn(self.ln1(x), k_cache, v_cache)
        x = x + y
        return x + self.mlp(self.ln2(x)), k, v


class Decode(nn.Module):
    """One decode step of :class:`GPT` (same parameter names, so either loads the other's
    weights): tokens ``idx`` (batch, 1) at position ``L`` (of ``seq`` > ``L``), then
    ``cache[2 * i]`` and ``cache[2 * i + 1]``, the keys and values of layer ``i``, each
    ``(batch, heads, L, d / heads)``. Returns the logits and, in the same order, the caches
    with the new token's k/v appended (``L + 1`` positions)."""

    def __init__(self, layers: int, d: int, heads: int, seq: int, vocab: int, split: bool) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(_DecodeBlock(d, heads, split) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: Tensor, *cache: Tensor) -> tuple[Tensor, ...]:
        start = cache[0].shape[2]
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        new: list[Tensor] = []
        for i, blk in enumerate(self.blocks):
            x, k, v = blk(x, cache[2 * i], cache[2 * i + 1])
            new += [k, v]
        return (self.lm_head(self.ln_f(x)), *new)


# ----------------------------------------------------------------------------- Mamba


class _Mixer(nn.Module):
    """Selective SSM (Mamba S6) with the scan unrolled over the sequence."""

    def __init__(self, d: int, state: int) -> None:
        super().__init__()
        di, self.rank, self.state = 2 * d, max(1, math.ceil(d / 16)), state
        self.in_proj = nn.Linear(d, 2 * di, bias=False)
        self.conv = nn.Conv1d(di, di, 4, groups=di, padding=3)
        self.x_proj = nn.Linear(di, self.rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(self.rank, di)
        a = torch.arange(1, state + 1, dtype=torch.float32).repeat(di, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        _, length, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv(u.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, bm, cm = self.x_proj(u).split([self.rank, self.state, self.state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))  # (B, L, di)
        da = torch.exp(dt.unsqueeze(-1) * -torch.exp(self.A_log))  # (B, L, di, N)
        dbu = (dt * u).unsqueeze(-1) * bm.unsqueeze(2)  # (B, L, di, N)
        h = dbu[:, 0]
        ys = [h @ cm[:, 0].unsqueeze(-1)]
        for t in range(1, length):
            h = da[:, t] * h + dbu[:, t]
            ys.append(h @ cm[:, t].unsqueeze(-1))
        y = torch.stack(ys, dim=1).squeeze(-1) + u * self.D
        return self.out_proj(y * F.silu(z))


class _MambaBlock(nn.Module):
    def __init__(self, d: int, state: int) -> None:
        super().__init__()
        self.norm, self.mixer = nn.RMSNorm(d), _Mixer(d, state)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mixer(self.norm(x))


class Mamba(nn.Module):
    def __init__(self, layers: int, d: int, state: int, vocab: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(_MambaBlock(d, state) for _ in range(layers))
        self.norm_f = nn.RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.emb.weight

    def forward(self, idx: Tensor) -> Tensor:
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.norm_f(x))


# ----------------------------------------------------------------------------- MLP


class _MLPBlock(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.ff(self.norm(x))


class MLP(nn.Module):
    def __init__(self, blocks: int, d: int, hidden: int, out: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d, d)
        self.blocks = nn.Sequential(*(_MLPBlock(d, hidden) for _ in range(blocks)))
        self.head = nn.Linear(d, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(F.relu(self.inp(x))))


# ----------------------------------------------------------------------------- ResNet


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet(nn.Module):
    def __init__(
        self, widths: tuple[int, ...], blocks: tuple[int, ...], classes: int, imagenet: bool
    ) -> None:
        super().__init__()
        w0 = widths[0]
        if imagenet:
            stem = [
                nn.Conv2d(3, w0, 7, 2, 3, bias=False),
                nn.BatchNorm2d(w0),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            ]
        else:
            stem = [nn.Conv2d(3, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        layers: list[nn.Module] = []
        cin = w0
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                layers.append(_BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        y = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


# ----------------------------------------------------------------------------- UNet


def _frequencies(dim: int) -> Tensor:
    half = dim // 2
    return torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))


def timestep_embedding(t: Tensor, freqs: Tensor) -> Tensor:
    """Sinusoidal embedding of diffusion timesteps ``t`` (batch,) -> (batch, 2 * len(freqs))."""
    args = t.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(groups, cin), nn.GroupNorm(groups, cout)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.temb = nn.Linear(tdim, cout)
        self.skip: nn.Module = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]  # temb arrives SiLU'd
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class _AttnBlock(nn.Module):
    def __init__(self, ch: int, groups: int, heads: int) -> None:
        super().__init__()
        self.norm, self.heads = nn.GroupNorm(groups, ch), heads
        self.qkv, self.proj = nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, hh, ww = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, hh * ww)
        q, k, v = qkv.transpose(-2, -1).unbind(1)  # (b, heads, hw, c/heads)
        y = F.scaled_dot_product_attention(q, k, v).transpose(-2, -1).reshape(b, c, hh, ww)
        return x + self.proj(y)


class UNet(nn.Module):
    def __init__(
        self,
        ch: int,
        mults: tuple[int, ...],
        nres: int,
        attn: tuple[int, ...],
        groups: int,
        heads: int,
        up_extra: int = 1,
    ) -> None:
        super().__init__()
        tdim = 4 * ch
        self.skip_down = up_extra > 0
        self.time = nn.Sequential(nn.Linear(ch, tdim), nn.SiLU(), nn.Linear(tdim, tdim), nn.SiLU())
        self.register_buffer("freqs", _frequencies(ch), persistent=False)
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        self.down = nn.ModuleList()
        skips, cin = [ch], ch
        for i, m in enumerate(mults):
            for _ in range(nres):
                self.down.append(_ResBlock(cin, ch * m, tdim, groups))
                cin = ch * m
                if i in attn:
                    self.down.append(_AttnBlock(cin, groups, heads))
                skips.append(cin)
            if i < len(mults) - 1:
                self.down.append(nn.Conv2d(cin, cin, 3, 2, 1))
                if up_extra:  # downsampled maps feed the extra up block of each level
                    skips.append(cin)
        self.mid = nn.ModuleList(
            [
                _ResBlock(cin, cin, tdim, groups),
                _AttnBlock(cin, groups, heads),
                _ResBlock(cin, cin, tdim, groups),
            ]
        )
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(nres + up_extra):
                self.up.append(_ResBlock(cin + skips.pop(), ch * m, tdim, groups))
                cin = ch * m
                if i in attn:
                    self.up.append(_AttnBlock(cin, groups, heads))
            if i > 0:
                self.up.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
                self.up.append(nn.Conv2d(cin, cin, 3, 1, 1))
        self.out = nn.Sequential(nn.GroupNorm(groups, cin), nn.SiLU(), nn.Conv2d(cin, 3, 3, 1, 1))

    freqs: Tensor

    def _run(self, mod: nn.Module, h: Tensor, temb: Tensor) -> Tensor:
        return mod(h, temb) if isinstance(mod, _ResBlock) else mod(h)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        temb = self.time(timestep_embedding(t, self.freqs))
        h = self.conv_in(x)
        hs = [h]
        for mod in self.down:
            h = self._run(mod, h, temb)
            if isinstance(mod, _AttnBlock):
                hs[-1] = h
            elif isinstance(mod, _ResBlock) or self.skip_down:
                hs.append(h)
        for mod in self.mid:
            h = self._run(mod, h, temb)
        for mod in self.up:
            if isinstance(mod, _ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(mod, h, temb)
        return self.out(h)
