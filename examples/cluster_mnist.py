"""k-means and a Gaussian mixture fitted on mnist5k (MNIST training digits), scored on the MNIST
test set (shipped with unsup: no row of it was seen in training)."""

from unsup.cluster import GaussianMixture, KMeans
from unsup.data import load
from unsup.metrics import clustering_report

train, test = load("mnist5k"), load("mnist-test")

km = KMeans(n_clusters=10, random_state=0).fit(train.X)
print("k-means, test:", clustering_report(test.y, km.predict(test.X)))

gmm = GaussianMixture(10, covariance_type="diag", reg_covar=1e-3, random_state=0).fit(train.X)
print("GMM, test:", clustering_report(test.y, gmm.predict(test.X)))
last = gmm.history_[-1]
print(f"EM (training data): ln p = {last['log_likelihood']:.3f} = L {last['bound']:.3f} "
      f"+ KL {last['kl']:.2e}")
