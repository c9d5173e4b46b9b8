#!/usr/bin/env bash
# Regenerates src/RetinaNet/Export/Onnx/Onnx.g.cs (C# namespace Onnx) from tools/onnx/onnx.proto with the protoc that
# ships inside the Google.Protobuf.Tools NuGet package (same version as the Google.Protobuf runtime we reference).
# onnx.proto is ONNX 1.12.0's (IR version 8, opsets up to 17), copied unchanged from Debian 12's python3-onnx
# 1.12.0-2 (/usr/lib/python3/dist-packages/onnx/onnx.proto; identical to onnx/onnx tag v1.12.0).
# Usage: bash tools/onnx/generate.sh      (from anywhere; needs the .NET SDK and NuGet)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version=3.36.2
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
tools="$packages/google.protobuf.tools/$version/tools"
if [ ! -d "$tools" ]; then
  # A throwaway project whose only job is to bring the package into the NuGet cache.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cat > "$tmp/fetch.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Google.Protobuf.Tools" Version="[$version]" /></ItemGroup>
</Project>
XML
  dotnet restore "$tmp/fetch.csproj" >/dev/null
fi
case "$(uname -m)" in
  x86_64) arch=linux_x64 ;;
  aarch64) arch=linux_arm64 ;;
  *) echo "generate.sh: no protoc for $(uname -m) in Google.Protobuf.Tools" >&2; exit 1 ;;
esac
protoc="$tools/$arch/protoc"
chmod +x "$protoc" 2>/dev/null || true
"$protoc" --version
"$protoc" --proto_path="$root/tools/onnx" --csharp_out="$root/src/RetinaNet/Export/Onnx" \
  --csharp_opt=file_extension=.g.cs "$root/tools/onnx/onnx.proto"
echo "wrote src/RetinaNet/Export/Onnx/Onnx.g.cs"
