using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaNet.Native;

/// <summary>libtorch operators TorchSharp does not wrap, called through their dispatcher entry points
/// (<c>at::_ops::NAME::call</c> in libtorch_cpu, the function every <c>at::NAME</c> calls): cuDNN's convolution with
/// bias (+ a residual) and ReLU in one call, and the plain convolution, which runs on the CPU too and so tests the
/// calling convention where no GPU is.
/// <para>C++ calling convention (SysV x86-64, Itanium): the returned <c>at::Tensor</c> comes back through a hidden
/// first pointer; <c>const Tensor&amp;</c> is the address of an <c>at::Tensor</c> (what a TorchSharp handle is);
/// <c>std::optional&lt;Tensor&gt;</c> is a TensorImpl pointer then an engaged flag; <c>ArrayRef&lt;SymInt&gt;</c> is
/// (int64 pointer, length) by value; a <c>SymInt</c> (not trivially copyable) travels as the address of its int64.
/// A C++ exception cannot cross into .NET (the process would abort), so every call first checks what the operator
/// would refuse.</para></summary>
public static unsafe class AtenOps
{
    public const string ConvolutionSymbol = "_ZN2at4_ops11convolution4callERKNS_6TensorES4_RKSt8optionalIS2_EN3c108"
        + "ArrayRefINS9_6SymIntEEESC_SC_bSC_SB_";
    public const string ConvolutionReluSymbol = "_ZN2at4_ops22cudnn_convolution_relu4callERKNS_6TensorES4_RKSt8"
        + "optionalIS2_EN3c108ArrayRefINS9_6SymIntEEESC_SC_SB_";
    public const string ConvolutionAddReluSymbol = "_ZN2at4_ops26cudnn_convolution_add_relu4callERKNS_6TensorES4_S4_"
        + "RKSt8optionalIN3c106ScalarEERKS5_IS2_ENS6_8ArrayRefINS6_6SymIntEEESG_SG_SF_";
    // operator new(size_t): the returned tensor's slot, freed by TorchSharp's dispose (C++ delete)
    public const string OperatorNewSymbol = "_Znwm";

    [StructLayout(LayoutKind.Sequential)]
    struct IntArray { public long* Data; public long Length; }

    [StructLayout(LayoutKind.Sequential)]
    struct OptionalTensor { public IntPtr Impl; public long Engaged; }

    sealed class Entry
    {
        public delegate* unmanaged<IntPtr, IntPtr, IntPtr, OptionalTensor*, IntArray, IntArray, IntArray, byte,
            IntArray, long*, IntPtr> Convolution;
        public delegate* unmanaged<IntPtr, IntPtr, IntPtr, OptionalTensor*, IntArray, IntArray, IntArray, long*,
            IntPtr> ConvolutionRelu;
        public delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, byte*, OptionalTensor*, IntArray, IntArray,
            IntArray, long*, IntPtr> ConvolutionAddRelu;
        public delegate* unmanaged<nuint, IntPtr> New;
    }

    static readonly Lazy<(Entry? Entry, string? Missing)> resolved = new(Resolve);

    /// <summary>Whether every entry point resolved (libtorch_cpu and the C++ runtime loaded).</summary>
    public static bool Available => resolved.Value.Entry is not null;
    public static string? MissingReason => resolved.Value.Missing;

    static Entry Require() => resolved.Value.Entry
        ?? throw new NotSupportedException($"libtorch's operators are unavailable: {MissingReason}");

    /// <summary>libtorch's <c>at::convolution</c> (2-d, not transposed) through its dispatcher entry point: what
    /// <c>conv2d</c> computes, any device.</summary>
    public static Tensor Convolution(Tensor input, Tensor weight, Tensor? bias, long[] stride, long[] padding,
        long[] dilation, long groups)
    {
        CheckShapes(input, weight, bias, stride, padding, dilation, groups);
        if (!SameDevice(input, weight) || input.dtype != weight.dtype || !input.is_floating_point()
            || bias is not null && (!SameDevice(input, bias) || bias.dtype != input.dtype))
            throw new ArgumentException("input, weight and bias must share a device and a floating dtype");
        var e = Require();
        long zero = 0;
        var outputPadding = new[] { zero, zero };
        fixed (long* s = stride, p = padding, d = dilation, o = outputPadding)
        {
            var b = Optional(bias);
            var slot = e.New(8);
            e.Convolution(slot, input.Handle, weight.Handle, &b, Array(s, stride), Array(p, padding),
                Array(d, dilation), 0, Array(o, outputPadding), &groups);
            KeepAlive(input, weight, bias);
            return Tensor.UnsafeCreateTensor(slot);
        }
    }

    /// <summary>Whether <see cref="ConvolutionRelu"/> and <see cref="ConvolutionAddRelu"/> take these tensors:
    /// CUDA, one floating dtype, 4-d, channels in multiples of 8, each at the start of its storage, no
    /// gradient wanted (the fused operators have none). What this cannot rule out aborts the process instead of
    /// throwing: cuDNN finding no engine for a shape (or bf16 before compute capability 8.0), running out of
    /// memory.</summary>
    public static bool CanFuse(Tensor input, Tensor weight, Tensor? bias, Tensor? residual = null) =>
        Available && input.device_type == DeviceType.CUDA && input.dim() == 4 && weight.dim() == 4
        && input.dtype is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16
        && weight.dtype == input.dtype && SameDevice(input, weight)
        && (bias is null || bias.dtype == input.dtype && SameDevice(input, bias) && bias.dim() == 1
            && bias.shape[0] == weight.shape[0] && bias.storage_offset() == 0)
        && (residual is null || residual.dtype == input.dtype && SameDevice(input, residual))
        // tensor-core engines want channels in multiples of 8 (and aligned data): elsewhere cuDNN may find none
        && input.shape[1] % 8 == 0 && weight.shape[0] % 8 == 0
        && input.storage_offset() == 0 && weight.storage_offset() == 0
        && (residual is null || residual.storage_offset() == 0)
        && !(is_grad_enabled() && (input.requires_grad || weight.requires_grad || bias is { requires_grad: true }
            || residual is { requires_grad: true }));

    /// <summary>ReLU(conv(input, weight) + bias) as one cuDNN call (<c>at::cudnn_convolution_relu</c>).</summary>
    public static Tensor ConvolutionRelu(Tensor input, Tensor weight, Tensor? bias, long[] stride, long[] padding,
        long[] dilation, long groups)
    {
        CheckShapes(input, weight, bias, stride, padding, dilation, groups);
        if (!CanFuse(input, weight, bias)) throw new ArgumentException("cuDNN's fused convolution does not take these");
        var e = Require();
        fixed (long* s = stride, p = padding, d = dilation)
        {
            var b = Optional(bias);
            var slot = e.New(8);
            e.ConvolutionRelu(slot, input.Handle, weight.Handle, &b, Array(s, stride), Array(p, padding),
                Array(d, dilation), &groups);
            KeepAlive(input, weight, bias);
            return Tensor.UnsafeCreateTensor(slot);
        }
    }

    /// <summary>ReLU(conv(input, weight) + residual + bias) as one cuDNN call (<c>at::cudnn_convolution_add_relu</c>,
    /// alpha 1); <paramref name="residual"/> has the output's shape.</summary>
    public static Tensor ConvolutionAddRelu(Tensor input, Tensor weight, Tensor residual, Tensor? bias, long[] stride,
        long[] padding, long[] dilation, long groups)
    {
        CheckShapes(input, weight, bias, stride, padding, dilation, groups);
        if (!CanFuse(input, weight, bias, residual))
            throw new ArgumentException("cuDNN's fused convolution does not take these");
        long[] output = OutputShape(input, weight, stride, padding, dilation);
        if (!residual.shape.SequenceEqual(output))
            throw new ArgumentException($"residual [{string.Join(", ", residual.shape)}] is not the output's shape " +
                $"[{string.Join(", ", output)}]");
        var e = Require();
        // std::optional<c10::Scalar> left empty (alpha 1): the engaged flag sits after the 32-byte, 16-aligned Scalar
        // (offset 32 in libtorch 2.10); 64 zero bytes cover it
        var alpha = stackalloc Int128[4]; // 16-aligned
        new Span<Int128>(alpha, 4).Clear();
        fixed (long* s = stride, p = padding, d = dilation)
        {
            var b = Optional(bias);
            var slot = e.New(8);
            e.ConvolutionAddRelu(slot, input.Handle, weight.Handle, residual.Handle, (byte*)alpha, &b,
                Array(s, stride), Array(p, padding), Array(d, dilation), &groups);
            KeepAlive(input, weight, bias, residual);
            return Tensor.UnsafeCreateTensor(slot);
        }
    }

    /// <summary>The output shape of a 2-d convolution (floor division, as libtorch computes it).</summary>
    public static long[] OutputShape(Tensor input, Tensor weight, long[] stride, long[] padding, long[] dilation) =>
    [
        input.shape[0], weight.shape[0],
        (input.shape[2] + 2 * padding[0] - dilation[0] * (weight.shape[2] - 1) - 1) / stride[0] + 1,
        (input.shape[3] + 2 * padding[1] - dilation[1] * (weight.shape[3] - 1) - 1) / stride[1] + 1,
    ];

    // what libtorch would refuse by throwing, which here would abort the process
    static void CheckShapes(Tensor input, Tensor weight, Tensor? bias, long[] stride, long[] padding, long[] dilation,
        long groups)
    {
        if (input.dim() != 4 || weight.dim() != 4)
            throw new ArgumentException("a 2-d convolution takes 4-d input and weight");
        if (groups < 1 || input.shape[1] != weight.shape[1] * groups || weight.shape[0] % groups != 0)
            throw new ArgumentException($"input channels {input.shape[1]} do not match weight " +
                $"[{string.Join(", ", weight.shape)}] with {groups} group(s)");
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.shape[0]))
            throw new ArgumentException("bias must have one value per output channel");
        if (stride.Length != 2 || padding.Length != 2 || dilation.Length != 2)
            throw new ArgumentException("stride, padding and dilation take two values");
        if (stride.Any(v => v < 1) || padding.Any(v => v < 0) || dilation.Any(v => v < 1))
            throw new ArgumentException("stride and dilation must be positive, padding not negative");
        if (OutputShape(input, weight, stride, padding, dilation).Skip(2).Any(v => v < 1))
            throw new ArgumentException($"a {weight.shape[2]}x{weight.shape[3]} kernel does not fit the padded " +
                $"{input.shape[2]}x{input.shape[3]} input");
    }

    static void KeepAlive(params Tensor?[] tensors)
    {
        // the handles were read before the call: the tensors' finalizers must not free them during it
        foreach (var t in tensors) GC.KeepAlive(t);
    }

    internal static bool SameDevice(Tensor a, Tensor b) =>
        a.device_type == b.device_type && a.device.index == b.device.index;

    static IntArray Array(long* data, long[] values) => new() { Data = data, Length = values.Length };

    // the tensor's TensorImpl pointer (the at::Tensor's only field), borrowed: the operator only reads it
    static OptionalTensor Optional(Tensor? t) =>
        t is null ? default : new OptionalTensor { Impl = *(IntPtr*)t.Handle, Engaged = 1 };

    static (Entry?, string?) Resolve()
    {
        var (torchCpu, path) = LibTorchLibraries.Find(LibTorchLibraries.PlatformName("torch_cpu"));
        if (torchCpu == IntPtr.Zero) return (null, "libtorch_cpu is not loaded");
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return (null, "the C++ calling convention is written for Linux x64 only");
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out var cxx)) return (null, "libstdc++.so.6 is not loadable");
        var names = new[] { ConvolutionSymbol, ConvolutionReluSymbol, ConvolutionAddReluSymbol };
        var addresses = names.Select(n => LibTorchLibraries.Export(torchCpu, n)).ToArray();
        var missing = names.Where((n, i) => addresses[i] == IntPtr.Zero).ToArray();
        if (missing.Length > 0) return (null, $"{path} does not export {string.Join(", ", missing)}");
        var allocate = LibTorchLibraries.Export(cxx, OperatorNewSymbol);
        if (allocate == IntPtr.Zero) return (null, $"libstdc++.so.6 does not export {OperatorNewSymbol}");
        return (new Entry
        {
            Convolution = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, OptionalTensor*, IntArray, IntArray, IntArray,
                byte, IntArray, long*, IntPtr>)addresses[0],
            ConvolutionRelu = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, OptionalTensor*, IntArray, IntArray,
                IntArray, long*, IntPtr>)addresses[1],
            ConvolutionAddRelu = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, byte*, OptionalTensor*, IntArray,
                IntArray, IntArray, long*, IntPtr>)addresses[2],
            New = (delegate* unmanaged<nuint, IntPtr>)allocate,
        }, null);
    }
}
