using RetinaNet;

// usage: DetectObjects MODEL IMAGE...   (MODEL: a .pth checkpoint or an exported .onnx)
if (args.Length < 2) { Console.Error.WriteLine("usage: DetectObjects MODEL IMAGE..."); return 2; }
using var detector = Detector.Load(args[0]);
foreach (var image in args[1..])
    foreach (var d in detector.Detect(image))
        Console.WriteLine($"{image}: {d.Name} {d.Score:F3} at x={d.X:F1} y={d.Y:F1} w={d.Width:F1} h={d.Height:F1}");
return 0;
