"""The trainer: plain data in (Parquet paths, a spec dict), a fitted model and its evaluation out.

No Django import here (datalake/engine is the model): the services load the dataset version,
call the engine in the worker and record what it returns. Modules:

- errors.py   TrainingError, the one exception for a spec or data the trainer refuses;
- result.py   TrainResult, what a training returns (metrics, curves, warnings, artifact);
- spec.py     parsing and validating a training spec (sklearn and Keras alike);
- tabular/    scikit-learn pipelines: preprocessing + algorithm, split, CV, search, evaluation;
- deep/       TensorFlow/Keras builders (MLP, LSTM, GRU, 1D-CNN, 2D-CNN); TensorFlow is imported
              only inside its functions;
- onnx/       the scikit-learn pipelines converted to ONNX, checked on the holdout, served by
              OnnxPredictor.
"""
