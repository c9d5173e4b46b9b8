#!/usr/bin/env bash
# Packs the CLI as ../shared/device/pack.sh does, then leaves out what no bench call runs (ASP.NET Core, XML, data,
# the debugger's libraries) so the app, ONNX Runtime included, fits beside a dataset and weights in the 64 MiB a
# call may carry. `serve` does not run from this pack. Usage: bash bench/device/pack_cli_lean.sh
set -euo pipefail
bash ../shared/device/pack.sh
cd .device && rm -rf app && tar -xJf app.tar.xz
(cd app && rm -f Microsoft.AspNetCore.* libcoreclrtraceptprovider.so libclrgcexp.so libmscordaccore.so libmscordbi.so \
  System.Private.Xml*.dll System.Data.*.dll Microsoft.VisualBasic*.dll System.Private.DataContractSerialization.dll \
  Microsoft.OpenApi.dll Microsoft.Extensions.Identity*.dll System.Net.Mail.dll System.Security.Cryptography.Xml.dll \
  System.Security.Cryptography.Pkcs.dll System.Xml*.dll)
XZ_OPT=-9 tar -cJf app.tar.xz app && rm -rf app
du -sh app.tar.xz
