using RetinaNet.Native;
using TorchSharp;
using Xunit;
using static RetinaNet.Native.Scalars;
using static TorchSharp.torch;

namespace RetinaNet.Tests.Native;

/// <summary><see cref="Scalars"/>: constants made once and of the literal's kind, and the add family without
/// TorchSharp's temporaries giving what the operators gave, checked against hand-computed values.</summary>
public class ScalarsTests
{
    [Fact]
    public void ConstantsAreMadeOnceAndKeepTheLiteralsKind()
    {
        Assert.Same(Of(3), Of(3));
        Assert.Same(Of(0.5), Of(0.5));
        Assert.NotSame(Of(1), Of(1.0));
        using var scope = NewDisposeScope();
        var counts = tensor(new long[] { 1, 2, 3 });
        Assert.Equal(ScalarType.Int64, (counts * Of(2)).dtype); // an integer constant keeps integers integer
        Assert.Equal(ScalarType.Float32, (counts * Of(2.0)).dtype); // a floating one promotes, as 2.0 does
        Assert.Equal(new long[] { 2, 4, 6 }, (counts * Of(2)).data<long>().ToArray());
    }

    [Fact]
    public void ThePlusFamilyGivesWhatTheOperatorsGave()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1.5f, -2f, 0.25f });
        var b = tensor(new float[] { 0.5f, 4f, -1f });
        Assert.Equal(new float[] { 2f, 2f, -0.75f }, a.Plus(b).data<float>().ToArray());
        Assert.Equal(new float[] { 2.5f, -1f, 1.25f }, a.Plus(Of(1)).data<float>().ToArray());
        Assert.Equal(new float[] { -0.5f, 3f, 0.75f }, Of(1).Minus(a).data<float>().ToArray());
        var c = a.clone();
        c.Plus_(b);
        Assert.Equal(new float[] { 2f, 2f, -0.75f }, c.data<float>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2, 3 }, Arange(4).data<long>().ToArray());
        Assert.Equal(new float[] { 2, 3, 4 }, Arange(2, 5, ScalarType.Float32).data<float>().ToArray());
    }
}
