#!/usr/bin/env bash
# Packs the test assembly (for its gpu-facts entry) and RetinaNet.Bench into one .device/app.tar.xz: both published
# into one folder share their libraries, so the pair fits the GPU machine's 64 MiB where two packs would not. Native
# libraries nothing on the GPU machine loads (ONNX Runtime, the debugger's) are left out.
set -euo pipefail
out=.device; app=$out/app
rm -rf "$app" && mkdir -p "$app"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
for project in tests/RetinaNet.Tests bench/RetinaNet.Bench; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained true -p:LibTorch=none -p:UseAppHost=true -o "$app" -nologo -v q
done
rm -f "$app"/libonnxruntime.so "$app"/libmscordaccore.so "$app"/libmscordbi.so
XZ_OPT=-9 tar -cJf "$out/app.tar.xz" -C "$out" app
rm -rf "$app"
cp ../shared/device/on-device.sh ../shared/device/peer_*.py "$out/" 2>/dev/null || true
du -sh "$out/app.tar.xz"
