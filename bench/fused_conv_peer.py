#!/usr/bin/env python3
"""What would folding BN into the convolutions and fusing their epilogues buy? ([w2 6/7] item 2, before writing it.)
ResNet50 body + FPN (torchvision's RetinaNet weights layout, random init, frozen BN) and the two head towers, bf16,
channels-last, batch 8, on one padded shape, timed by CUDA events (median of --iters after warm-up):

  body_torchvision   torchvision's eager body + FPN under autocast (FrozenBatchNorm2d: affine and ReLU as passes)
  body_convs_only    the same convolutions with BN folded in and no bias, ReLU or residual: a floor for the convs
  body_cudnn_fused   BN folded; every conv + bias (+ residual) + ReLU one cuDNN call (cudnn_convolution_relu /
                     cudnn_convolution_add_relu); FPN as plain convs with bias
  heads_levels       the class and box towers (4 conv + ReLU, then the last conv) per level, as eager code runs them
  heads_levels_fused the same with cudnn_convolution_relu
  heads_canvas       the five levels packed in one canvas (one pixel of zeros between them), each tower layer one
                     cudnn_convolution_relu over the canvas then a multiply by the mask that zeroes the gaps

Prints one JSON line per variant, and the largest difference of the fused body against torchvision's (relative to
the output's largest magnitude) so a fused op that computes something else is seen.

  python3 bench/fused_conv_peer.py [--batch 8] [--shape 896x1152] [--iters 30]
"""
import argparse, json
import torch
import torch.nn.functional as F
from torchvision.models.detection import retinanet_resnet50_fpn

p = argparse.ArgumentParser()
p.add_argument('--batch', type=int, default=8)
p.add_argument('--shape', default='896x1152')
p.add_argument('--iters', type=int, default=30)
a = p.parse_args()
h, w = map(int, a.shape.split('x'))
torch.manual_seed(0)
cl = torch.channels_last
model = retinanet_resnet50_fpn(weights=None, weights_backbone=None).cuda().eval().to(memory_format=cl)
body, fpn = model.backbone.body, model.backbone.fpn
x = torch.rand(a.batch, 3, h, w, device='cuda').to(memory_format=cl)
bf = torch.bfloat16


def timed(name, fn, **extra):
    with torch.no_grad():
        for _ in range(3):
            fn()
        times = []
        for _ in range(a.iters):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); e.synchronize()
            times.append(s.elapsed_time(e))
    times.sort()
    print(json.dumps({'bench': 'fused-conv-peer', 'variant': name, 'batch': a.batch, 'shape': a.shape,
                      'median_ms': round(times[len(times) // 2], 3), 'min_ms': round(times[0], 3), **extra}),
          flush=True)


def fold(conv, bn):
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    wt = (conv.weight * scale[:, None, None, None]).to(bf).contiguous(memory_format=cl)
    return wt, (bn.bias - bn.running_mean * scale).to(bf), conv.stride, conv.padding, conv.dilation, conv.groups


def convs_of(m):
    stem = fold(m.conv1, m.bn1)
    blocks = []
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        for b in layer:
            down = fold(b.downsample[0], b.downsample[1]) if b.downsample is not None else None
            blocks.append((fold(b.conv1, b.bn1), fold(b.conv2, b.bn2), fold(b.conv3, b.bn3), down))
    return stem, blocks


stem, blocks = convs_of(body)
stages = [3, 4, 6, 3]


def fpn_params():
    inner = [(b[0].weight.to(bf).contiguous(memory_format=cl), b[0].bias.to(bf)) for b in fpn.inner_blocks]
    layer = [(b[0].weight.to(bf).contiguous(memory_format=cl), b[0].bias.to(bf)) for b in fpn.layer_blocks]
    p6 = fpn.extra_blocks.p6
    p7 = fpn.extra_blocks.p7
    return inner, layer, [(c.weight.to(bf).contiguous(memory_format=cl), c.bias.to(bf)) for c in (p6, p7)]


inner, layer, extra = fpn_params()


def run_fpn(c3, c4, c5):
    lat = [F.conv2d(c, wt, b) for c, (wt, b) in zip((c3, c4, c5), inner)]
    top = lat[2]
    outs = [F.conv2d(top, *layer[2], padding=1)]
    for i in (1, 0):
        top = lat[i] + F.interpolate(top, size=lat[i].shape[-2:], mode='nearest')
        outs.insert(0, F.conv2d(top, *layer[i], padding=1))
    p6 = F.conv2d(outs[-1], *extra[0], stride=2, padding=1)  # torchvision's LastLevelP6P7 reads P5 (256 ch)
    p7 = F.conv2d(F.relu(p6), *extra[1], stride=2, padding=1)
    return outs + [p6, p7]


def body_fused(x, mode):
    def conv(t, c, relu=True, z=None):
        wt, b, s, pad, d, g = c
        if mode == 'plain':
            return F.conv2d(t, wt, None, s, pad, d, g)
        if z is not None:
            return torch.cudnn_convolution_add_relu(t, wt, z, 1.0, b, s, pad, d, g)
        if relu:
            return torch.cudnn_convolution_relu(t, wt, b, s, pad, d, g)
        return F.conv2d(t, wt, b, s, pad, d, g)

    t = conv(x.to(bf), stem)
    t = F.max_pool2d(t, 3, 2, 1)
    feats, i = [], 0
    for n in stages:
        for _ in range(n):
            c1, c2, c3, down = blocks[i]; i += 1
            identity = conv(t, down, relu=False) if down is not None else t
            y = conv(conv(t, c1), c2)
            t = conv(y, c3, z=identity) if mode != 'plain' else conv(y, c3)
        feats.append(t)
    return run_fpn(*feats[1:])


def body_torchvision():
    with torch.autocast('cuda', dtype=bf):
        return list(model.backbone(x).values())


ref = body_torchvision()
fused = body_fused(x, 'fused')
err = max(((r.float() - f.float()).abs().max() / r.float().abs().max()).item() for r, f in zip(ref, fused))
timed('body_torchvision', body_torchvision)
timed('body_convs_only', lambda: body_fused(x, 'plain'))
timed('body_cudnn_fused', lambda: body_fused(x, 'fused'), max_rel_diff_vs_torchvision=round(err, 4))

# heads: the towers' weights, bf16 channels-last
head = model.head
towers = []
for hd, last in ((head.classification_head, head.classification_head.cls_logits),
                 (head.regression_head, head.regression_head.bbox_reg)):
    convs = [(m[0].weight.to(bf).contiguous(memory_format=cl), m[0].bias.to(bf)) for m in hd.conv]
    towers.append((convs, (last.weight.to(bf).contiguous(memory_format=cl), last.bias.to(bf))))
levels = [f.to(bf).contiguous(memory_format=cl) for f in ref]


def heads_levels(fused):
    out = []
    for convs, last in towers:
        for f in levels:
            t = f
            for wt, b in convs:
                t = torch.cudnn_convolution_relu(t, wt, b, (1, 1), (1, 1), (1, 1), 1) if fused \
                    else F.relu(F.conv2d(t, wt, b, padding=1))
            out.append(F.conv2d(t, *last, padding=1))
    return out


# canvas: P3 at the left, P4..P7 stacked to its right, a zero pixel between regions
sizes = [tuple(f.shape[-2:]) for f in levels]
right_w = sizes[1][1]
places, row = [(0, 0)], 0
for s in sizes[1:]:
    places.append((row, sizes[0][1] + 1)); row += s[0] + 1
ch, cw = max(sizes[0][0], row - 1), sizes[0][1] + 1 + right_w
mask = torch.zeros(1, 1, ch, cw, device='cuda', dtype=bf)
for (r, c), (hh, ww) in zip(places, sizes):
    mask[..., r:r + hh, c:c + ww] = 1
canvas = torch.zeros(a.batch, 256, ch, cw, device='cuda', dtype=bf).contiguous(memory_format=cl)
for (r, c), f in zip(places, levels):
    canvas[..., r:r + f.shape[-2], c:c + f.shape[-1]] = f


def heads_canvas():
    out = []
    for convs, last in towers:
        t = canvas
        for wt, b in convs:
            t = torch.cudnn_convolution_relu(t, wt, b, (1, 1), (1, 1), (1, 1), 1).mul_(mask)
        out.append(F.conv2d(t, *last, padding=1))
    return out


lv = heads_levels(False)
cv = heads_canvas()
cerr = 0.0
for k in range(2):
    for (r, c), (hh, ww), ref_level in zip(places, sizes, lv[k * 5:(k + 1) * 5]):
        got = cv[k][..., r:r + hh, c:c + ww].float()
        cerr = max(cerr, ((got - ref_level.float()).abs().max() / ref_level.float().abs().max()).item())
timed('heads_levels', lambda: heads_levels(False))
timed('heads_levels_fused', lambda: heads_levels(True))
timed('heads_canvas', heads_canvas, canvas=f'{ch}x{cw}', level_pixels=sum(s[0] * s[1] for s in sizes),
      max_rel_diff_vs_levels=round(cerr, 4))
