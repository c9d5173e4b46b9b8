using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace RetinaNet.Model;

/// <summary>Training's frozen batch norm (+ residual) (+ ReLU) as one autograd node around
/// <see cref="AffineReluKernel"/>: one pass forward (libtorch: addcmul, add_, relu_) and one backward (libtorch:
/// relu's and addcmul's), the output saved for the ReLU mask as relu_ saves it. <para>TorchSharp's custom functions
/// call back from libtorch's autograd threads, where no dispose scope is open: the tensors that reach
/// <see cref="backward"/> are released here, and the gradients handed back (libtorch keeps its own reference) at the
/// next forward or backward call, so no activation-sized tensor waits for the garbage collector.</para></summary>
public sealed class FrozenNormReluFunction : SingleTensorFunction<FrozenNormReluFunction>
{
    static readonly List<Tensor> handedBack = new();

    public override string Name => "FrozenBatchNormReLU";

    /// <summary>vars: x, scale, shift (float32 [C]), residual (or null), relu (bool).</summary>
    public static Tensor Apply(Tensor x, Tensor scale, Tensor shift, Tensor? residual, bool relu)
        => apply(x, scale, shift, residual!, relu);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        ReleaseHandedBack();
        var x = (Tensor)vars[0];
        var residual = vars[3] as Tensor;
        bool relu = (bool)vars[4];
        var y = AffineReluKernel.Apply(x, (Tensor)vars[1], (Tensor)vars[2], residual, relu, empty_like(x));
        ctx.save_for_backward([y, (Tensor)vars[1]]);
        ctx.save_data("relu", relu);
        ctx.save_data("residual", residual is not null);
        return y;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad)
    {
        ReleaseHandedBack();
        var saved = ctx.get_saved_variables();
        var (y, scale) = (saved[0], saved[1]);
        bool relu = (bool)ctx.get_data("relu"), hasResidual = (bool)ctx.get_data("residual");
        Tensor gradX;
        Tensor? gradResidual = null;
        if (AffineReluKernel.SameLayout(y, grad))
        {
            gradX = empty_like(y);
            gradResidual = hasResidual ? empty_like(y) : null;
            AffineReluKernel.Backward(grad, y, scale, relu, gradX, gradResidual);
        }
        else
        {
            // a gradient in another layout (rare): libtorch's ops, same result
            var g = relu ? grad.masked_fill(y <= Of(0), Of(0)) : grad.alias();
            gradX = g * scale.to(g.dtype).view(1, -1, 1, 1);
            if (hasResidual) gradResidual = g; else g.Dispose();
        }
        grad.Dispose(); y.Dispose(); scale.Dispose();
        lock (handedBack)
        {
            handedBack.Add(gradX);
            if (gradResidual is not null) handedBack.Add(gradResidual);
        }
        return [gradX, null!, null!, gradResidual!, null!];
    }

    static void ReleaseHandedBack()
    {
        lock (handedBack)
        {
            foreach (var t in handedBack) t.Dispose();
            handedBack.Clear();
        }
    }
}
