"""The public notice of the algorithm (« notice explicative »), in French, for one registered
version: what French public bodies must publish about an algorithm behind individual decisions
(Code des relations entre le public et l'administration, L312-1-3; the individual explanation
of L311-3-1 and R311-3-1-2).

Where it sits: ``nonrecours card`` writes it beside the model card of each version. Its weights
are the model's own (LightGBM gain per feature, as shares); its wording comes from the schema's
French text (``Column.fr``).
"""

from __future__ import annotations

import pandas as pd

from nonrecours.core.schema import BENEFIT_LABELS, PROFILES
from nonrecours.training.model import Scorer

MAIN_PARAMETERS = 10
"""Parameters listed with their weight: the main ones, as CRPA R311-3-1-2 asks."""


def feature_weights(scorer: Scorer) -> pd.DataFrame:
    """Share of the model's total gain per feature, largest first."""
    gain = scorer.booster.feature_importance(importance_type="gain")
    frame = pd.DataFrame({"feature": list(scorer.feature_names), "share": gain / gain.sum() if gain.sum() else gain})
    return frame.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def notice(
    *, name: str, version: str, run_id: str, scorer: Scorer, capacity_share: float, top: int = MAIN_PARAMETERS
) -> str:
    weights = feature_weights(scorer).head(top)
    lines = "\n".join(
        f"| {PROFILES.column(r.feature).fr} | `{r.feature}` | {r.share:.1%} |" for r in weights.itertuples(index=False)
    )
    benefits = ", ".join(BENEFIT_LABELS.values())
    return f"""# Notice explicative de l'algorithme « {name} » (version {version})

*Publiée au titre de l'article L312-1-3 du code des relations entre le public et l'administration.
Référence technique : modèle {name} version {version}, exécution d'entraînement `{run_id}`.*

## À quoi sert cet algorithme
Il aide les services sociaux à **repérer les foyers qui ont probablement droit à une prestation et
ne la demandent pas** (non-recours), pour les contacter en premier et les aider à faire valoir
leurs droits. Prestations couvertes : {benefits}.

Il **ne décide d'aucun droit** : l'ouverture d'un droit reste décidée par l'organisme payeur, selon
la loi, sur demande du foyer. Il **n'est jamais utilisé pour contrôler, détecter la fraude ou
sanctionner**.

## Comment il fonctionne
1. Les droits théoriques de chaque foyer sont calculés par OpenFisca-France, le moteur de calcul
   de la législation publié par l'administration, à partir des données que l'organisme détient.
2. Un modèle statistique (arbres de décision boostés, LightGBM) estime la probabilité que le foyer
   ait droit à chaque prestation sans la percevoir.
3. Les foyers sont classés par montant mensuel probablement non perçu (probabilité × montant).
   Les agents contactent les premiers de la liste (environ {capacity_share:.0%} des foyers par trimestre
   examinés, selon leurs moyens).

## Données utilisées
Composition du foyer, âges, activité, revenus d'activité connus et déclarés, pensions, allocations
chômage, logement (statut d'occupation, loyer, commune), contacts avec les services sociaux,
prestations déjà perçues, événements de vie signalés. **Ne sont jamais utilisés par le modèle** :
le sexe, la nationalité, le handicap et la tranche d'âge en tant que telle ; ils servent seulement
à vérifier que le modèle n'écarte aucun groupe (rapports d'audit).

## Principaux paramètres et leur poids
Part de chaque donnée dans les décisions du modèle (gain cumulé des arbres, {top} premières) :

| donnée | nom technique | poids |
|---|---|---|
{lines}

## Ce que l'algorithme ne fait pas
- Il ne refuse, ne suspend ni ne réduit aucune prestation.
- Il ne remplace pas l'examen de la situation par un agent.
- Il n'est pas utilisé hors de la population sur laquelle il a été entraîné et évalué.

## Obtenir l'explication de votre propre score
Toute personne peut demander à l'organisme qui l'a contactée (ou qui détient ses données) les
règles de l'algorithme et leur application à sa situation (article L311-3-1 ; articles R311-3-1-1
et R311-3-1-2) : les données utilisées et leur source, les principaux éléments qui ont compté
pour son score (ils sont conservés avec chaque score dans le journal des décisions, sous un
pseudonyme), et la version du modèle. La demande se fait par écrit auprès du service social ou
du délégué à la protection des données de l'organisme.
"""


def notice_html(name: str, version: str, run_id: str, scorer: Scorer, *, capacity_share: float) -> str:
    """:func:`notice` as HTML for the agents' page (CommonMark with tables; raw HTML in it is not kept)."""
    from markdown_it import MarkdownIt

    text = notice(name=name, version=version, run_id=run_id, scorer=scorer, capacity_share=capacity_share)
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
