"""MLflow "models from code" entry: the file MLflow stores and executes to rebuild the recommender pyfunc."""

from mlflow.models import set_model

from shopflow.registry.pyfunc_model import RecommenderModel

set_model(RecommenderModel())
