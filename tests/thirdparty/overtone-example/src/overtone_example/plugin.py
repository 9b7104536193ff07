"""Registrations. Import only overtone here: listing plugins must stay fast."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_engines():
    return [Component(
        "engine", "linreg", "overtone_example.components:LinregEngine",
        "least-squares regression by full-batch gradient descent (NumPy)",
    )]


@hookimpl
def overtone_analyzers():
    return [Component(
        "analyzer", "moments", "overtone_example.components:Moments",
        "mean and standard deviation of a variable over a dimension",
        params={"variable": Param("train_loss", help="variable to summarise"),
                "dim": Param("step", help="dimension to reduce")},
    )]


@hookimpl
def overtone_signal_processors():
    return [Component(
        "signal_processor", "demean", "overtone_example.components:Demean",
        "subtract each spectrum's mean along frequency",
        params={"variable": Param("spectra", help="data variable to process")},
    )]
