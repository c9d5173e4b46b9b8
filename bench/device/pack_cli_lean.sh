#!/usr/bin/env bash
# Packs the CLI (or PROJECT, e.g. bench/RetinaNet.Bench, which runs every CLI command too) as
# ../shared/device/pack.sh does, then leaves out what no bench call runs (ASP.NET Core, XML, data, the debugger's
# libraries; with NO_ORT=1 ONNX Runtime as well) so the app fits beside a dataset and weights in the 64 MiB a call may
# carry. `serve` does not run from this pack; from a pack of tests/RetinaNet.Tests the GPU tests do
# (`RETINANET_EXE=RetinaNet.Tests bash .device/on-device.sh gpu-facts`), the serving tests do not.
# Usage: [NO_ORT=1] bash bench/device/pack_cli_lean.sh [PROJECT]
set -euo pipefail
# an app host for every project (a test project gets none by default): on-device.sh runs the executable
proj=${1:-src/RetinaNet.Cli}; shift || true
bash ../shared/device/pack.sh "$proj" -p:UseAppHost=true "$@"
cd .device && rm -rf app && tar -xJf app.tar.xz
(cd app && rm -f Microsoft.AspNetCore.* libcoreclrtraceptprovider.so libclrgcexp.so libmscordaccore.so libmscordbi.so \
  System.Private.Xml*.dll System.Data.*.dll Microsoft.VisualBasic*.dll System.Private.DataContractSerialization.dll \
  Microsoft.OpenApi.dll Microsoft.Extensions.Identity*.dll System.Net.Mail.dll System.Security.Cryptography.Xml.dll \
  System.Security.Cryptography.Pkcs.dll System.Xml*.dll ${NO_ORT:+libonnxruntime.so})
XZ_OPT=-9 tar -cJf app.tar.xz app && rm -rf app
du -sh app.tar.xz
