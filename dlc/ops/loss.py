"""Loss operators (SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss)."""
